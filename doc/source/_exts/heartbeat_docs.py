"""Sphinx directives that draw pages from the code itself.

``command-help``
    The ``--help`` text of a console script (the argument names the
    ``console_scripts`` entry point and, optionally, a sub-command), run
    in a child process at build time, so that the CLI pages and man pages
    are the commands' own words.

``agent-transitions``
    The agent's transition table as a table, built with
    :func:`heartbeat.agent.diagram.edges`: the same rows as
    ``doc/agent-states.md``.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))

#: The first line of an argparse section ("options:", "Commands:").
HEADING = re.compile(r'^[A-Za-z][A-Za-z ]*:$')

#: Width of the help text: it fits an 80-column terminal inside a man
#: page's indentation.
HELP_COLUMNS = '70'


def console_scripts() -> dict[str, str]:
    """``{name: 'module:function'}`` of setup.cfg's console scripts."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, 'setup.cfg'), encoding='utf-8')
    out = {}
    for line in parser['entry_points']['console_scripts'].splitlines():
        name, sep, target = line.partition('=')
        if sep:
            out[name.strip()] = target.strip()
    return out


def command_help(name: str, args: list[str]) -> str:
    """What ``name args... --help`` prints."""
    module, _, function = console_scripts()[name].partition(':')
    code = ('import sys; sys.argv[0] = %r; from %s import %s as main; '
            'sys.exit(main())' % (name, module, function))
    env = dict(os.environ, COLUMNS=HELP_COLUMNS, PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        [sys.executable, '-c', code, *args, '--help'], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError('%s %s --help failed (%d): %s' % (
            name, ' '.join(args), proc.returncode, proc.stderr.strip()))
    return proc.stdout.rstrip() + '\n'


def without_description(text: str) -> str:
    """``text`` without the paragraphs between the usage and the options.

    Those paragraphs are the command's docstring, which a page shows on
    its own, as reStructuredText.
    """
    blocks = text.split('\n\n')
    rest = blocks[1:]
    while rest and not HEADING.match(rest[0].split('\n', 1)[0]):
        rest.pop(0)
    return '\n\n'.join([blocks[0], *rest])


class CommandHelp(SphinxDirective):
    """``.. command-help:: heartbeat-storage [sub-command]``

    ``:no-description:`` leaves out the description paragraphs.
    """

    required_arguments = 1
    optional_arguments = 4
    has_content = False
    option_spec = {'no-description': directives.flag}

    def run(self) -> list[nodes.Node]:
        name, *args = self.arguments
        try:
            text = command_help(name, args)
        except (KeyError, RuntimeError, subprocess.TimeoutExpired) as err:
            raise self.error('command-help %s: %s' % (name, err)) from err
        if 'no-description' in self.options:
            text = without_description(text)
        block = nodes.literal_block(text, text)
        block['language'] = 'text'
        return [block]


class AgentTransitions(SphinxDirective):
    """``.. agent-transitions::`` -- every arrow of the state diagram."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from heartbeat.agent import diagram

        lines = ['.. list-table::', '   :header-rows: 1',
                 '   :widths: 20 20 60', '',
                 '   * - from', '     - to', '     - when']
        for edge in diagram.edges():
            source = ('any state' if edge.source is None
                      else '``%s``' % edge.source)
            lines += ['   * - %s' % source, '     - ``%s``' % edge.target,
                      '     - %s' % ' / '.join(edge.labels)]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source='agent-transitions'),
                                self.content_offset, container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive('command-help', CommandHelp)
    app.add_directive('agent-transitions', AgentTransitions)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
