"""The agent's states and actions (re-exported by :mod:`.fsm`).

They live apart from the state machine so that the election, which reads
the states peers post, does not import the machine that imports it.
"""

from __future__ import annotations

import enum


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
