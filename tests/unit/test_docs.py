"""Every console script has a man page entry and a CLI page (no build)."""

import ast
import configparser
import glob
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
SOURCE = os.path.join(ROOT, 'doc', 'source')

#: Daemons and administrative commands belong in section 8.
SECTION_8 = {'heartbeat-broker', 'heartbeat-agent', 'heartbeat-storage',
             'heartbeat-maintenance'}


def console_scripts():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, 'setup.cfg'), encoding='utf-8')
    lines = parser['entry_points']['console_scripts'].splitlines()
    return {line.partition('=')[0].strip() for line in lines if '=' in line}


def man_pages():
    """conf.py's man_pages, read without running conf.py."""
    with open(os.path.join(SOURCE, 'conf.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and [getattr(t, 'id', None) for t in node.targets]
                == ['man_pages']):
            # The authors are a name (author); the rest are literals.
            return [(src.value, name.value, desc.value, sect.value)
                    for src, name, desc, _, sect in
                    (entry.elts for entry in node.value.elts)]
    raise AssertionError('no man_pages in doc/source/conf.py')


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def test_every_console_script_has_one_man_page():
    names = [name for _, name, _, _ in man_pages()]
    assert sorted(names) == sorted(set(names)), 'a man page listed twice'
    assert set(names) == console_scripts()


def test_man_page_sections_and_descriptions():
    for _, name, description, section in man_pages():
        assert section == (8 if name in SECTION_8 else 1), name
        assert description and not description.endswith('.'), name


def test_every_man_page_is_a_cli_page_showing_the_commands_help():
    index = read(os.path.join(SOURCE, 'cli', 'index.rst'))
    for source, name, _, _ in man_pages():
        assert source == 'cli/%s' % name
        text = read(os.path.join(SOURCE, source + '.rst'))
        assert re.search(r'^\.\. command-help:: %s$' % re.escape(name),
                         text, re.M), '%s.rst lacks its --help' % source
        assert re.search(r'^   %s$' % re.escape(name), index, re.M), (
            'cli/index.rst does not list %s' % name)


def test_systemd_units_point_to_existing_man_pages():
    pages = {'%s(%d)' % (name, section)
             for _, name, _, section in man_pages()}
    units = glob.glob(os.path.join(ROOT, 'etc', 'systemd', '*.service'))
    assert units
    for unit in units:
        for ref in re.findall(r'^Documentation=man:(\S+)$', read(unit),
                              re.M):
            assert ref in pages, '%s: no man page %s' % (unit, ref)


def test_the_package_is_marked_typed():
    assert os.path.isfile(os.path.join(ROOT, 'heartbeat', 'py.typed'))
