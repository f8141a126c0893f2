"""The state diagram is generated from the transition table."""

from __future__ import annotations

import re

import pytest

from heartbeat.agent import diagram
from heartbeat.agent import fsm
from heartbeat.agent.fsm import State


def test_every_row_is_an_arrow_when_not_gathered():
    edges = diagram.edges(collapse=False)
    assert all(edge.source is not None for edge in edges)
    drawn = {(e.source, e.target, label) for e in edges for label in e.labels}
    rows = {(o.value, n.value, c) for o, n, c in fsm.TRANSITIONS}
    assert drawn == rows


def test_gathered_arrows_account_for_every_row():
    edges = diagram.edges()
    direct = {(e.source, e.target, label) for e in edges
              if e.source is not None for label in e.labels}
    wide = [e for e in edges if e.source is None]
    assert wide, 'the maintenance and shutdown rows are gathered'
    for old, new, condition in fsm.TRANSITIONS:
        if (old.value, new.value, condition) in direct:
            continue
        [edge] = [e for e in wide if e.target == new.value
                  and e.labels[0].startswith(condition)]
        excluded = re.search(r'\(not from (.*)\)$', edge.labels[0])
        assert excluded is None or old.value not in (
            excluded.group(1).split(', '))
    # The exclusions name exactly the states the rows do not come from.
    [to_global] = [e for e in wide if e.target == 'global_maintenance']
    assert to_global.labels[0].endswith('(not from acquiring, stopped)')


def test_parallel_rows_share_one_arrow():
    [edge] = [e for e in diagram.edges() if (e.source, e.target) == (
        'acquiring', 'idle')]
    assert len(edge.labels) == 3


@pytest.mark.parametrize('collapse', [True, False])
def test_dot(collapse):
    text = diagram.dot(collapse)
    assert text.startswith('digraph agent {') and text.endswith('}\n')
    body = text.splitlines()[1:-1]
    assert all(line.endswith(';') for line in body)
    for state in State:
        assert '  %s;' % state.value in body
    arrows = [line for line in body if ' -> ' in line]
    assert len(arrows) == len(diagram.edges(collapse)) + 1
    assert 'idle -> acquiring [label="nobody runs the workload' in text


def test_mermaid():
    text = diagram.mermaid()
    lines = text.splitlines()
    assert lines[:2] == ['stateDiagram-v2', '    [*] --> starting']
    assert lines[-1] == '    stopped --> [*]'
    arrows = [line for line in lines[2:-1] if ' --> ' in line]
    assert len(arrows) == len(diagram.edges())
    for line in arrows:
        # One colon separates the arrow from its label.
        assert line.count(':') == 1, line


def test_main_prints_the_chosen_format(capsys):
    assert diagram.main(['--format', 'mermaid']) == 0
    assert capsys.readouterr().out == diagram.mermaid()
    assert diagram.main(['--every-row']) == 0
    assert capsys.readouterr().out == diagram.dot(collapse=False)
    with pytest.raises(SystemExit):
        diagram.main(['--format', 'png'])
