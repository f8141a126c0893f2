"""The state machine's vocabulary: states, actions, inputs of a step.

Re-exported by :mod:`heartbeat.agent.fsm`.  They live apart from the
machine so that the election, which reads the states peers post, does not
import the machine that imports it.
"""

from __future__ import annotations

import dataclasses
import enum

from heartbeat.broker import status as st


class State(str, enum.Enum):
    """What the agent of a host is doing; its value is what it posts."""

    STARTING = 'starting'
    HALF_CONFIGURED = 'half_configured'
    IDLE = 'idle'
    ACQUIRING = 'acquiring'
    WORKLOAD_STARTING = 'workload_starting'
    RUNNING = 'running'
    RUNNING_BAD_HEALTH = 'running_bad_health'
    STOPPING = 'stopping'
    FORCE_STOPPING = 'force_stopping'
    MAYBE_AWAY = 'maybe_away'
    UNEXPECTEDLY_DOWN = 'unexpectedly_down'
    LOCAL_MAINTENANCE = 'local_maintenance'
    GLOBAL_MAINTENANCE = 'global_maintenance'
    LEASE_LOST = 'lease_lost'
    STOPPED = 'stopped'


#: States in which this host has the workload (started, running or being
#: stopped): a peer in one of them is the workload's runner.
RUNNING_STATES: frozenset[State] = frozenset({
    State.WORKLOAD_STARTING, State.RUNNING, State.RUNNING_BAD_HEALTH,
    State.STOPPING, State.FORCE_STOPPING})

#: States that publish score 0 whatever the host's readings.
ZERO_SCORE_STATES: frozenset[State] = frozenset({
    State.STARTING, State.HALF_CONFIGURED, State.UNEXPECTEDLY_DOWN,
    State.LEASE_LOST, State.LOCAL_MAINTENANCE, State.STOPPED})


class Action(str, enum.Enum):
    """What the agent service must do after a step, in the given order."""

    JOIN_LOCKSPACE = 'join_lockspace'
    START_DOMAIN_MONITOR = 'start_domain_monitor'
    STOP_DOMAIN_MONITOR = 'stop_domain_monitor'
    #: Launch the workload, have the broker acquire the lease for its pid,
    #: then let it go; report the outcome as the next Inputs.launch.
    START_WORKLOAD = 'start_workload'
    #: Send [workload] stop_signal.
    STOP_WORKLOAD = 'stop_workload'
    #: Send SIGKILL.
    KILL_WORKLOAD = 'kill_workload'
    RELEASE_LEASE = 'release_lease'


def runs_workload(state: str | None) -> bool:
    """Whether a posted state string is one of :data:`RUNNING_STATES`."""
    try:
        return state is not None and State(state) in RUNNING_STATES
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class WorkloadView:
    """What the service saw of the local workload this loop."""

    running: bool = False
    pid: int | None = None
    #: None: no health check configured, or no result yet.
    healthy: bool | None = None
    health_detail: str = ''
    health_age_s: float | None = None


@dataclasses.dataclass(frozen=True)
class LaunchResult:
    """The outcome of the previous loop's START_WORKLOAD.

    ``outcome`` is ``started`` (lease held, the workload was let go),
    ``busy`` (the lease is held elsewhere: normal when two hosts race) or
    ``failed`` (spawn or acquire failed; ``error`` says why).
    """

    outcome: str
    pid: int | None = None
    error: str = ''


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Everything one step decides on."""

    #: Monotonic seconds: all timeouts are measured on it.
    now: float
    #: Wall clock seconds, only for the history's timestamps.
    wall: float
    #: None: the broker did not answer (``broker_error`` says why).
    status: st.BrokerStatus | None
    broker_error: str = ''
    workload: WorkloadView = WorkloadView()
    launch: LaunchResult | None = None
    #: The agent is exiting: publish ``stopped``, never touch the workload.
    shutdown: bool = False


@dataclasses.dataclass(frozen=True)
class Transition:
    """One state change, as kept in the history."""

    wall: float
    old: str
    new: str
    reason: str
