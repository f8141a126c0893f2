"""The transition table of the agent's state machine (re-exported by fsm).

Each row is ``(from, to, condition)``.  The conditions are the constants
below; :class:`heartbeat.agent.fsm.Agent` names one of them with each state
change and checks that the row exists, so this table is the complete list
of what the machine can do and the state diagram is drawn from it.
"""

from __future__ import annotations

from heartbeat.agent.states import State

S = State

SHUTDOWN = 'the agent is exiting'
GLOBAL = 'global maintenance set'
LOCAL_STOP = 'local maintenance, the workload runs here'
LOCAL_ENTER = 'local maintenance, no workload here'

# Where a host goes when nothing else is being decided ("settling").
SETTLE_RUNNING = 'the workload runs here with the lease'
SETTLE_UNLEASED = 'the workload runs here without the lease'
SETTLE_NOT_READY = 'storage, lockspace or domain monitor not ready'
SETTLE_READY = 'ready'
OBSERVED = 'peers observed for service_down_time'
GLOBAL_CLEARED = 'global maintenance cleared'
LOCAL_CLEARED = 'local maintenance cleared'

ELECTED = 'nobody runs the workload and this host is the best'
STARTED = 'launched, lease acquired'
BUSY = 'the lease is held by another host'
START_FAILED = 'the launch failed'
NO_LAUNCH_RESULT = 'no launch result within start_timeout'

HEALTHY = 'healthy or no health check'
START_TIMEOUT = 'not healthy within start_timeout'
UNHEALTHY = 'the health check fails'
RECOVERED = 'the health check passes again'
BAD_HEALTH_TIMEOUT = 'unhealthy for bad_health_timeout'
MIGRATE = 'a peer is better by migrate_threshold for migrate_after loops'
GONE = 'the workload is gone'
LEASE_LOST = 'the lockspace or the lease is lost'

STOP_TIMEOUT = 'not stopped within stop_timeout'
STOPPED = 'the workload is gone'
STOPPED_LOCAL = 'the workload is gone, local maintenance'

BACK = 'the workload is back'
AWAY_TIMEOUT = 'gone for away_timeout'
COOLED_DOWN = 'unexpected_down_time over'
REJOINED = 'lockspace joined, the workload is gone'
LEASE_BACK = 'lockspace joined, the workload holds the lease'
UNLEASED = 'lockspace joined, the workload runs without the lease'


def joined(why: str, condition: str) -> str:
    """A settling condition prefixed with what led to settling."""
    return '%s: %s' % (why, condition) if why else condition


_SETTLED = ((S.RUNNING, SETTLE_RUNNING), (S.STOPPING, SETTLE_UNLEASED),
            (S.HALF_CONFIGURED, SETTLE_NOT_READY), (S.IDLE, SETTLE_READY))

#: States that settle, and what leads them to.
_SETTLING = ((S.STARTING, OBSERVED), (S.HALF_CONFIGURED, ''), (S.IDLE, ''),
             (S.GLOBAL_MAINTENANCE, GLOBAL_CLEARED),
             (S.LOCAL_MAINTENANCE, LOCAL_CLEARED))

#: States local maintenance takes over (the stopping ones finish first,
#: acquiring first learns the outcome of its launch).
_LOCAL_FROM = tuple(s for s in S if s not in (
    S.ACQUIRING, S.STOPPING, S.FORCE_STOPPING, S.STOPPED))

_WORKLOAD_STATES = (S.WORKLOAD_STARTING, S.RUNNING, S.RUNNING_BAD_HEALTH)


def _rows() -> list[tuple[State, State, str]]:
    rows: list[tuple[State, State, str]] = [
        (s, S.STOPPED, SHUTDOWN) for s in S if s is not S.STOPPED]
    rows += [(s, S.GLOBAL_MAINTENANCE, GLOBAL) for s in S
             if s not in (S.STOPPED, S.GLOBAL_MAINTENANCE, S.ACQUIRING)]
    rows += [(s, S.STOPPING, LOCAL_STOP) for s in _LOCAL_FROM]
    rows += [(s, S.LOCAL_MAINTENANCE, LOCAL_ENTER) for s in _LOCAL_FROM
             if s is not S.LOCAL_MAINTENANCE]
    rows += [(s, to, joined(why, cond))
             for s, why in _SETTLING for to, cond in _SETTLED if to is not s]
    rows += [
        (S.IDLE, S.ACQUIRING, ELECTED),
        (S.ACQUIRING, S.WORKLOAD_STARTING, STARTED),
        (S.ACQUIRING, S.IDLE, BUSY),
        (S.ACQUIRING, S.IDLE, START_FAILED),
        (S.ACQUIRING, S.IDLE, NO_LAUNCH_RESULT),
        (S.WORKLOAD_STARTING, S.RUNNING, HEALTHY),
        (S.WORKLOAD_STARTING, S.STOPPING, START_TIMEOUT),
        (S.RUNNING, S.RUNNING_BAD_HEALTH, UNHEALTHY),
        (S.RUNNING, S.STOPPING, MIGRATE),
        (S.RUNNING_BAD_HEALTH, S.RUNNING, RECOVERED),
        (S.RUNNING_BAD_HEALTH, S.STOPPING, BAD_HEALTH_TIMEOUT),
    ]
    for s in _WORKLOAD_STATES:
        rows += [(s, S.MAYBE_AWAY, GONE), (s, S.LEASE_LOST, LEASE_LOST)]
    rows += [
        (S.STOPPING, S.FORCE_STOPPING, STOP_TIMEOUT),
        (S.STOPPING, S.IDLE, STOPPED),
        (S.STOPPING, S.LOCAL_MAINTENANCE, STOPPED_LOCAL),
        (S.FORCE_STOPPING, S.IDLE, STOPPED),
        (S.FORCE_STOPPING, S.LOCAL_MAINTENANCE, STOPPED_LOCAL),
        (S.MAYBE_AWAY, S.RUNNING, BACK),
        (S.MAYBE_AWAY, S.UNEXPECTEDLY_DOWN, AWAY_TIMEOUT),
        (S.UNEXPECTEDLY_DOWN, S.IDLE, COOLED_DOWN),
        (S.LEASE_LOST, S.IDLE, REJOINED),
        (S.LEASE_LOST, S.RUNNING, LEASE_BACK),
        (S.LEASE_LOST, S.STOPPING, UNLEASED),
    ]
    return rows


TRANSITIONS: tuple[tuple[State, State, str], ...] = tuple(_rows())
