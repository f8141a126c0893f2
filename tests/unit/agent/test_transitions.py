"""Every row of fsm.TRANSITIONS, reached through real steps.

Each row is reached from its state (built by the recipes in drive.py) by
one final situation chosen by the row's condition; the test checks that
the step takes exactly that row.
"""

from __future__ import annotations

from typing import Any

import pytest

from heartbeat.agent import fsm
from heartbeat.agent.fsm import State
from heartbeat.agent.settings import AgentSettings
from heartbeat.agent import table
from tests.unit.agent import drive
from tests.unit.agent.drive import HEALTHY
from tests.unit.agent.drive import HELD
from tests.unit.agent.drive import UNHEALTHY
from tests.unit.agent import statuses

S = AgentSettings()


def _settling(to: State) -> dict[str, Any]:
    """A situation that settles a host into ``to``."""
    return {
        State.RUNNING: {'workload': HEALTHY, 'holders': HELD},
        State.STOPPING: {'workload': HEALTHY},
        State.HALF_CONFIGURED: {'lockspace': 'left'},
        State.IDLE: {},
    }[to]


#: Situations by condition; a list means several steps.
SITUATIONS: dict[str, Any] = {
    table.SHUTDOWN: {'shutdown': True},
    table.GLOBAL: {'global_on': True, 'workload': HEALTHY, 'holders': HELD},
    table.LOCAL_STOP: {'local': True, 'workload': HEALTHY,
                       'holders': HELD},
    table.LOCAL_ENTER: {'local': True},
    table.ELECTED: {},
    table.STARTED: {'launch': drive.STARTED, 'workload': drive.STARTING_UP},
    table.BUSY: {'launch': fsm.LaunchResult('busy')},
    table.START_FAILED: {'launch': fsm.LaunchResult(
        'failed', error='command not found: /opt/app')},
    table.NO_LAUNCH_RESULT: {'dt': S.start_timeout},
    table.HEALTHY: {'workload': HEALTHY},
    table.START_TIMEOUT: {'workload': drive.STARTING_UP,
                          'dt': S.start_timeout},
    table.UNHEALTHY: {'workload': UNHEALTHY, 'holders': HELD},
    table.RECOVERED: {'workload': HEALTHY, 'holders': HELD},
    table.BAD_HEALTH_TIMEOUT: {'workload': UNHEALTHY, 'holders': HELD,
                               'dt': S.bad_health_timeout},
    table.MIGRATE: [{'workload': HEALTHY, 'holders': HELD,
                     'readings': {'network': 0.0},
                     'peers': (statuses.peer(2, 3400),)}] * S.migrate_after,
    table.GONE: {},
    table.LEASE_LOST: {'workload': HEALTHY, 'holders': HELD,
                       'lockspace': 'failed'},
    table.STOP_TIMEOUT: {'workload': HEALTHY, 'dt': S.stop_timeout},
    table.STOPPED: {},
    table.STOPPED_LOCAL: {'local': True},
    table.BACK: {'workload': HEALTHY, 'holders': HELD},
    table.AWAY_TIMEOUT: {'dt': S.away_timeout},
    table.COOLED_DOWN: {'dt': S.unexpected_down_time},
    table.REJOINED: {},
    table.LEASE_BACK: {'workload': HEALTHY, 'holders': HELD},
    table.UNLEASED: {'workload': HEALTHY},
}


def situation(new: State, condition: str) -> list[dict]:
    """The steps that should take the row to ``new`` under ``condition``."""
    if condition in SITUATIONS:
        steps = SITUATIONS[condition]
    else:
        # A settling row: "<what led to it>: <where it settles>".
        assert condition.rpartition(': ')[2] in (
            table.SETTLE_RUNNING, table.SETTLE_UNLEASED,
            table.SETTLE_NOT_READY, table.SETTLE_READY), condition
        steps = _settling(new)
    return steps if isinstance(steps, list) else [steps]


@pytest.mark.parametrize(
    'old, new, condition', fsm.TRANSITIONS,
    ids=['%s->%s:%s' % (o.value, n.value, c) for o, n, c in fsm.TRANSITIONS])
def test_row_is_reached(old, new, condition):
    run = drive.reach(old)
    for kwargs in situation(new, condition):
        decision = run.step(**kwargs)
    assert decision.changed, decision.reason
    assert (decision.old_state, decision.state, decision.condition) == (
        old, new, condition)
    assert decision.history[0].old == old.value
    assert decision.history[0].new == new.value


def test_the_table_has_no_duplicates_and_no_self_loops():
    assert len(set(fsm.TRANSITIONS)) == len(fsm.TRANSITIONS)
    assert all(old is not new for old, new, _ in fsm.TRANSITIONS)


def test_every_state_is_reachable_and_every_state_but_stopped_leaves():
    targets = {new for _, new, _ in fsm.TRANSITIONS}
    sources = {old for old, _, _ in fsm.TRANSITIONS}
    assert targets | {State.STARTING} == set(State)
    assert sources == set(State) - {State.STOPPED}
