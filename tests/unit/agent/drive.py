"""Drive a real fsm.Agent through steps, and recipes that reach a state.

Every recipe gets there through real steps (no state is set by hand), so
the timers and counters inside the agent are those of a real run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heartbeat.agent import fsm
from heartbeat.agent.fsm import State
from heartbeat.agent.settings import AgentSettings
from tests.unit.agent import statuses

PID = 4242
NONE = fsm.WorkloadView()
STARTING_UP = fsm.WorkloadView(running=True, pid=PID, healthy=False,
                               health_detail='HTTP 503')
HEALTHY = fsm.WorkloadView(running=True, pid=PID, healthy=True)
UNHEALTHY = fsm.WorkloadView(running=True, pid=PID, healthy=False,
                             health_detail='exit status 1')
UNCHECKED = fsm.WorkloadView(running=True, pid=PID)
STARTED = fsm.LaunchResult('started', pid=PID)
HELD = (PID,)


class Run:
    """One agent and its clock; ``step`` moves the clock by ``dt``."""

    def __init__(self, settings: AgentSettings | None = None) -> None:
        self.now = 0.0
        self.agent = fsm.Agent(settings or AgentSettings(), self.now)
        self.decisions: list[fsm.Decision] = []

    @property
    def state(self) -> State:
        return self.agent.state

    def step(self, status: Any = 'default', *, dt: float = 10.0,
             workload: fsm.WorkloadView = NONE,
             launch: fsm.LaunchResult | None = None,
             shutdown: bool = False, broker_error: str = '',
             **status_args: Any) -> fsm.Decision:
        """One step; ``status_args`` build the status unless given."""
        if status == 'default':
            status = statuses.status(**status_args)
        self.now += dt
        decision = self.agent.step(fsm.Inputs(
            now=self.now, wall=1.7e9 + self.now, status=status,
            broker_error=broker_error, workload=workload, launch=launch,
            shutdown=shutdown))
        self.decisions.append(decision)
        return decision


def _expect(run: Run, state: State) -> Run:
    assert run.state is state, (run.state, run.decisions[-1].reason)
    return run


def starting(run: Run) -> Run:
    return _expect(run, State.STARTING)


def half_configured(run: Run) -> Run:
    run.step(lockspace='left')
    return _expect(run, State.HALF_CONFIGURED)


def idle(run: Run) -> Run:
    run.step()
    return _expect(run, State.IDLE)


def acquiring(run: Run) -> Run:
    idle(run).step()
    return _expect(run, State.ACQUIRING)


def workload_starting(run: Run) -> Run:
    acquiring(run).step(launch=STARTED, workload=STARTING_UP)
    return _expect(run, State.WORKLOAD_STARTING)


def running(run: Run) -> Run:
    workload_starting(run).step(workload=HEALTHY, holders=HELD)
    return _expect(run, State.RUNNING)


def running_bad_health(run: Run) -> Run:
    running(run).step(workload=UNHEALTHY, holders=HELD)
    return _expect(run, State.RUNNING_BAD_HEALTH)


def stopping(run: Run) -> Run:
    running_bad_health(run).step(workload=UNHEALTHY, holders=HELD,
                                 dt=run.agent.settings.bad_health_timeout)
    return _expect(run, State.STOPPING)


def force_stopping(run: Run) -> Run:
    stopping(run).step(workload=HEALTHY, holders=HELD,
                       dt=run.agent.settings.stop_timeout)
    return _expect(run, State.FORCE_STOPPING)


def maybe_away(run: Run) -> Run:
    running(run).step()
    return _expect(run, State.MAYBE_AWAY)


def unexpectedly_down(run: Run) -> Run:
    maybe_away(run).step(dt=run.agent.settings.away_timeout)
    return _expect(run, State.UNEXPECTEDLY_DOWN)


def local_maintenance(run: Run) -> Run:
    idle(run).step(local=True)
    return _expect(run, State.LOCAL_MAINTENANCE)


def global_maintenance(run: Run) -> Run:
    idle(run).step(global_on=True)
    return _expect(run, State.GLOBAL_MAINTENANCE)


def lease_lost(run: Run) -> Run:
    running(run).step(workload=HEALTHY, holders=HELD, lockspace='failed')
    return _expect(run, State.LEASE_LOST)


def stopped(run: Run) -> Run:
    run.step(shutdown=True)
    return _expect(run, State.STOPPED)


RECIPES: dict[State, Callable[[Run], Run]] = {
    state: globals()[state.value] for state in State}


def reach(state: State, settings: AgentSettings | None = None) -> Run:
    """A run whose agent is in ``state``."""
    return RECIPES[state](Run(settings))
