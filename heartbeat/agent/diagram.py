"""The agent's state diagram, drawn from :data:`fsm.TRANSITIONS` alone.

Nothing here is drawn by hand, so the diagram cannot drift from the code::

    python -m heartbeat.agent.diagram --format mermaid > states.mmd
    python -m heartbeat.agent.diagram | dot -Tsvg > states.svg

Rows that lead to the same state for the same condition from many states
(the agent exiting, maintenance) are drawn once, from an "any state" node
whose label names the states they do not come from.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses

from heartbeat.agent import fsm
from heartbeat.agent.fsm import State

#: A (to, condition) pair coming from at least this many states is drawn
#: once from "any state".
COLLAPSE_FROM = 6


@dataclasses.dataclass(frozen=True)
class Edge:
    """One arrow: ``source`` is a state value or None for "any state"."""

    source: str | None
    target: str
    labels: tuple[str, ...]


def edges(collapse: bool = True) -> list[Edge]:
    """The arrows of the diagram, in the order of the table."""
    sources: dict[tuple[State, str], list[State]] = {}
    for old, new, condition in fsm.TRANSITIONS:
        sources.setdefault((new, condition), []).append(old)
    wide = {key for key, olds in sources.items()
            if collapse and len(olds) >= COLLAPSE_FROM}
    grouped: dict[tuple[str, str], list[str]] = {}
    out: list[Edge] = []
    for old, new, condition in fsm.TRANSITIONS:
        if (new, condition) not in wide:
            grouped.setdefault((old.value, new.value), []).append(condition)
    for (new, condition) in sorted(wide, key=lambda k: (k[0].value, k[1])):
        others = sorted(s.value for s in State
                        if s not in sources[(new, condition)] and s is not new)
        label = condition + (' (not from %s)' % ', '.join(others)
                             if others else '')
        out.append(Edge(None, new.value, (label,)))
    out += [Edge(old, new, tuple(labels))
            for (old, new), labels in grouped.items()]
    return out


def _quote(text: str) -> str:
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


def dot(collapse: bool = True) -> str:
    """The diagram in Graphviz's dot language."""
    lines = ['digraph agent {', '  rankdir=LR;',
             '  node [shape=box, style=rounded, fontname="sans-serif"];',
             '  edge [fontname="sans-serif", fontsize=10];',
             '  start [shape=point];', '  start -> starting;']
    lines += ['  %s;' % state.value for state in State]
    for number, edge in enumerate(edges(collapse)):
        source = edge.source
        if source is None:
            source = 'any_%d' % number
            lines.append('  %s [label="any state", shape=plaintext];'
                         % source)
        lines.append('  %s -> %s [label=%s];' % (
            source, edge.target, _quote('\\n'.join(edge.labels))))
    lines.append('}')
    return '\n'.join(lines) + '\n'


def _mermaid_label(labels: Sequence[str]) -> str:
    # A colon would end the label early in some renderers.
    return ' / '.join(labels).replace(':', ',')


def mermaid(collapse: bool = True) -> str:
    """The diagram as a Mermaid ``stateDiagram-v2``."""
    lines = ['stateDiagram-v2', '    [*] --> starting']
    for number, edge in enumerate(edges(collapse)):
        source = edge.source
        if source is None:
            source = 'any_%d' % number
            lines.append('    state "any state" as %s' % source)
        label = _mermaid_label(edge.labels)
        lines.append('    %s --> %s : %s' % (source, edge.target, label))
    lines.append('    stopped --> [*]')
    return '\n'.join(lines) + '\n'


def main(argv: Sequence[str] | None = None) -> int:
    """Print the diagram; ``--format dot`` (default) or ``mermaid``."""
    parser = argparse.ArgumentParser(
        prog='python -m heartbeat.agent.diagram',
        description='Print the agent\'s state diagram, generated from the '
                    'state machine\'s transition table.')
    parser.add_argument('--format', choices=('dot', 'mermaid'),
                        default='dot', help='Output language.')
    parser.add_argument('--every-row', action='store_true',
                        help='Draw every row of the table, without '
                             'gathering the rows that come from many '
                             'states into one "any state" arrow.')
    args = parser.parse_args(argv)
    render = dot if args.format == 'dot' else mermaid
    print(render(collapse=not args.every_row), end='')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
