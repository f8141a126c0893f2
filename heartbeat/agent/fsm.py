"""The agent's state machine (pure: no I/O, no clock, no logging).

Each loop the agent service hands :meth:`Agent.step` the broker's typed
status, what it saw of the local workload, the outcome of the previous
launch and the time, as :class:`Inputs`; the step returns a
:class:`Decision`: the new state, the actions to perform in order, the
score to post and why.  Every state change is a row of
:data:`TRANSITIONS` (the step checks it), so the table is the whole
behaviour and the state diagram is drawn from it.

Precedence of a step, top to bottom: the agent exiting (``stopped``); no
broker status (nothing changes); a pending launch while ``acquiring``;
global maintenance (hands off); local maintenance (stop the workload, then
stop the domain monitor); then the current state's own rule.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any
from typing import NamedTuple

from heartbeat.agent import election
from heartbeat.agent import score as score_mod
from heartbeat.agent.settings import AgentSettings
from heartbeat.agent.states import Action
from heartbeat.agent.states import Inputs
from heartbeat.agent.states import LaunchResult
from heartbeat.agent.states import RUNNING_STATES
from heartbeat.agent.states import State
from heartbeat.agent.states import Transition
from heartbeat.agent.states import WorkloadView
from heartbeat.agent.states import ZERO_SCORE_STATES
from heartbeat.agent import table
from heartbeat.broker import status as st

__all__ = ['HISTORY_SIZE', 'RUNNING_STATES', 'TRANSITIONS', 'Action',
           'Agent', 'Decision', 'Inputs', 'LaunchResult', 'State',
           'Transition', 'WorkloadView']

#: Transitions kept in the history a Decision carries.
HISTORY_SIZE = 5

#: (from, to, condition): every state change the machine can make.
TRANSITIONS: tuple[tuple[State, State, str], ...] = table.TRANSITIONS

_ROWS = frozenset(TRANSITIONS)

#: Actions a state asks for when it is entered.
_ENTRY_ACTIONS: dict[State, tuple[Action, ...]] = {
    State.STOPPING: (Action.STOP_WORKLOAD,),
    State.FORCE_STOPPING: (Action.KILL_WORKLOAD,),
}

_LOCKSPACE_LOST = (st.LOCKSPACE_LEFT, st.LOCKSPACE_FAILED,
                   st.LOCKSPACE_LEAVING)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome of one step."""

    state: State
    old_state: State
    actions: tuple[Action, ...]
    reason: str
    score: score_mod.Score
    #: The state changed in this step.
    changed: bool
    #: Newest first, at most HISTORY_SIZE.
    history: tuple[Transition, ...]
    broker_reachable: bool
    #: The TRANSITIONS condition of the change ('' when it did not).
    condition: str = ''
    workload_running: bool = False
    workload_pid: int | None = None
    #: The agent's loop interval: its broker marks the payload stale
    #: (:data:`~heartbeat.broker.status.AGENT_STALE`) after three loops
    #: without a post.
    loop_interval: float = 0.0

    def payload(self) -> dict[str, Any]:
        """The state payload the service posts to the broker."""
        return {'agent': {
            'state': self.state.value,
            'score': self.score.total,
            'breakdown': dict(self.score.breakdown),
            'score_reason': self.score.reason,
            'notes': list(self.score.notes),
            'reason': self.reason,
            'history': [dataclasses.asdict(t) for t in self.history],
            'workload_running': self.workload_running,
            'workload_pid': self.workload_pid,
            'loop_interval': self.loop_interval,
        }}


class _Move(NamedTuple):
    state: State
    reason: str
    #: The TRANSITIONS condition; ignored when the state stays.
    condition: str = ''
    actions: tuple[Action, ...] = ()


def _readiness(status: st.BrokerStatus) -> tuple[list[str], list[Action]]:
    """What keeps this host from being ready, and the steps to ask for."""
    missing: list[str] = []
    actions: list[Action] = []
    if not status.writer.connected:
        missing.append('storage not connected')
    lockspace = status.fencing.lockspace.state
    if lockspace != st.LOCKSPACE_JOINED:
        missing.append('lockspace %s' % lockspace)
        if lockspace in (st.LOCKSPACE_LEFT, st.LOCKSPACE_FAILED):
            actions.append(Action.JOIN_LOCKSPACE)
    monitor = status.domain.monitor
    if monitor != st.DOMAIN_RUNNING:
        missing.append('domain monitor %s' % monitor)
        if monitor in (st.DOMAIN_NEVER_STARTED, st.DOMAIN_STOPPED):
            actions.append(Action.START_DOMAIN_MONITOR)
    return missing, actions


def _holds(workload: WorkloadView, status: st.BrokerStatus) -> bool:
    return workload.running and workload.pid is not None and any(
        h.pid == workload.pid for h in status.fencing.lease.holders)


def _unconfirmed(workload: WorkloadView, status: st.BrokerStatus) -> bool:
    """The broker has not yet confirmed or denied our pid's lease.

    A restarted broker lists a recorded holder as pending until the fencing
    authority answers: not evidence that the lease is gone.
    """
    return workload.pid is not None and any(
        h.pid == workload.pid for h in status.fencing.lease.pending)


def _pid(workload: WorkloadView) -> str:
    return 'pid %s' % workload.pid if workload.pid is not None else 'pid ?'


class Agent:
    """The state machine of one host's agent.

    ``settings`` may be replaced between steps (live options); ``state``
    is the current state.  Starts in ``starting`` at monotonic ``now``.
    """

    def __init__(self, settings: AgentSettings, now: float) -> None:
        self.settings = settings
        self.state = State.STARTING
        self._entered = now
        self._history: collections.deque[Transition] = collections.deque(
            maxlen=HISTORY_SIZE)
        self._failed: list[float] = []
        self._cpu = score_mod.CpuWindow(settings.cpu_window)
        self._gate = election.MigrationGate()
        self._pending_launch: LaunchResult | None = None
        self._score = score_mod.Score(0, {}, 'no broker status yet')

    @property
    def failed_starts(self) -> int:
        """Failed starts that have not expired yet (as of the last step)."""
        return len(self._failed)

    # -- the step ------------------------------------------------------------

    def step(self, inputs: Inputs) -> Decision:
        """Decide one loop; see the module docstring for the precedence."""
        expiry = self.settings.start_failure_expiry
        self._failed = [t for t in self._failed if inputs.now - t < expiry]
        status = inputs.status
        if inputs.shutdown or self.state is State.STOPPED:
            return self._finish(inputs, self._shutdown(), None)
        if status is None:
            self._pending_launch = inputs.launch or self._pending_launch
            return self._unreachable(inputs)
        self._feed_cpu(inputs, status)
        raw = self._raw_score(inputs, status)
        failed = len(self._failed)
        move = self._decide(inputs, status, raw)
        if len(self._failed) != failed:
            # A start failed in this step: it counts at once.
            raw = self._raw_score(inputs, status)
        return self._finish(inputs, move, raw)

    def _shutdown(self) -> _Move:
        if self.state is State.STOPPED:
            return _Move(State.STOPPED, 'agent stopped')
        return _Move(State.STOPPED, 'agent stopped', table.SHUTDOWN)

    def _unreachable(self, inputs: Inputs) -> Decision:
        return Decision(
            state=self.state, old_state=self.state, actions=(),
            reason='broker unreachable: %s' % (inputs.broker_error
                                               or 'no answer'),
            score=self._score, changed=False, history=tuple(self._history),
            broker_reachable=False,
            workload_running=inputs.workload.running,
            workload_pid=inputs.workload.pid,
            loop_interval=self.settings.loop_interval)

    def _feed_cpu(self, inputs: Inputs, status: st.BrokerStatus) -> None:
        self._cpu.window = self.settings.cpu_window
        load = score_mod.number(status.submonitors.get(score_mod.CPU_LOAD))
        if load is not None:
            self._cpu.add(inputs.now, load)

    def _raw_score(self, inputs: Inputs,
                   status: st.BrokerStatus) -> score_mod.Score:
        return score_mod.compute(
            self.settings, status, self._cpu.average(inputs.now),
            len(self._failed), status.maintenance.local,
            runs_workload=inputs.workload.running)

    def _finish(self, inputs: Inputs, move: _Move,
                raw: score_mod.Score | None) -> Decision:
        old, new = self.state, move.state
        changed = new is not old
        actions = move.actions
        if changed:
            assert (old, new, move.condition) in _ROWS, (
                'transition not in TRANSITIONS: %s -> %s (%r)'
                % (old.value, new.value, move.condition))
            actions += _ENTRY_ACTIONS.get(new, ())
            self._history.appendleft(Transition(
                inputs.wall, old.value, new.value, move.reason))
            self._entered = inputs.now
            self._gate.reset()
            self.state = new
        if raw is None or new in ZERO_SCORE_STATES:
            base = raw or self._score
            # A score already 0 says why better than the state's name.
            raw = base.zeroed(base.reason if base.total == 0 and base.reason
                              else 'state %s' % new.value)
        self._score = raw
        return Decision(
            state=new, old_state=old, actions=actions, reason=move.reason,
            score=raw, changed=changed, history=tuple(self._history),
            broker_reachable=True,
            condition=move.condition if changed else '',
            workload_running=inputs.workload.running,
            workload_pid=inputs.workload.pid,
            loop_interval=self.settings.loop_interval)

    def _decide(self, inputs: Inputs, status: st.BrokerStatus,
                raw: score_mod.Score) -> _Move:
        launch, self._pending_launch = (inputs.launch or self._pending_launch,
                                        None)
        if self.state is State.ACQUIRING:
            # The launch already happened: its outcome is dealt with before
            # maintenance, which then applies at the next step.
            return self._acquiring(inputs, launch)
        if status.maintenance.global_on:
            if self.state is State.GLOBAL_MAINTENANCE:
                return self._stay('global maintenance')
            return _Move(State.GLOBAL_MAINTENANCE, 'global maintenance',
                         table.GLOBAL)
        if status.maintenance.local and self.state not in (
                State.STOPPING, State.FORCE_STOPPING):
            return self._local(inputs, status)
        # Each state's rule is the method named after it (STOPPED never
        # gets here: step() ends it first).
        handler = getattr(self, '_' + self.state.value)
        move: _Move = handler(inputs, status, raw)
        return move

    def _stay(self, reason: str, actions: tuple[Action, ...] = ()) -> _Move:
        return _Move(self.state, reason, '', actions)

    def _elapsed(self, inputs: Inputs) -> float:
        return inputs.now - self._entered

    def _down_time(self, status: st.BrokerStatus) -> float:
        return (status.options.service_down_time
                or self.settings.service_down_time)

    def _observing(self, status: st.BrokerStatus) -> str | None:
        """Why peers have not been watched long enough, or None."""
        observed = status.peers.observed_s
        down_time = self._down_time(status)
        if observed is not None and observed >= down_time:
            return None
        return 'observing peers for %.0f of %g s' % (observed or 0.0,
                                                     down_time)

    def _count_failed_start(self, now: float) -> str:
        self._failed.append(now)
        return 'failed start %d of %d' % (len(self._failed),
                                          self.settings.max_start_failures)

    # -- maintenance and readiness ---------------------------------------

    def _local(self, inputs: Inputs, status: st.BrokerStatus) -> _Move:
        if inputs.workload.running:
            return _Move(State.STOPPING, 'local maintenance: stopping %s'
                         % _pid(inputs.workload), table.LOCAL_STOP)
        if self.state is State.LOCAL_MAINTENANCE:
            again = status.domain.monitor == st.DOMAIN_RUNNING
            return self._stay('local maintenance', (
                (Action.STOP_DOMAIN_MONITOR,) if again else ()))
        return _Move(State.LOCAL_MAINTENANCE, 'local maintenance',
                     table.LOCAL_ENTER,
                     (Action.RELEASE_LEASE, Action.STOP_DOMAIN_MONITOR))

    def _settle(self, inputs: Inputs, status: st.BrokerStatus,
                why: str) -> _Move:
        """Where a host that is not deciding anything else belongs."""
        workload = inputs.workload
        missing, asks = _readiness(status)
        actions = tuple(asks)
        not_ready = 'not ready: %s' % ', '.join(missing)
        if workload.running and _holds(workload, status):
            return _Move(State.RUNNING, '%s holds the lease' % _pid(workload),
                         table.joined(why, table.SETTLE_RUNNING))
        if missing and workload.running:
            return _Move(State.HALF_CONFIGURED, '%s; %s is left alone'
                         % (not_ready, _pid(workload)),
                         table.joined(why, table.SETTLE_NOT_READY), actions)
        if workload.running and _unconfirmed(workload, status):
            return self._stay('%s: its lease is not confirmed yet'
                              % _pid(workload), actions)
        if workload.running:
            return _Move(State.STOPPING, '%s runs without the lease'
                         % _pid(workload),
                         table.joined(why, table.SETTLE_UNLEASED))
        if missing:
            return _Move(State.HALF_CONFIGURED, not_ready,
                         table.joined(why, table.SETTLE_NOT_READY), actions)
        return _Move(State.IDLE, 'ready',
                     table.joined(why, table.SETTLE_READY))

    def _global_maintenance(self, inputs: Inputs, status: st.BrokerStatus,
                            raw: score_mod.Score) -> _Move:
        return self._settle(inputs, status, table.GLOBAL_CLEARED)

    def _local_maintenance(self, inputs: Inputs, status: st.BrokerStatus,
                           raw: score_mod.Score) -> _Move:
        return self._settle(inputs, status, table.LOCAL_CLEARED)

    def _half_configured(self, inputs: Inputs, status: st.BrokerStatus,
                         raw: score_mod.Score) -> _Move:
        return self._settle(inputs, status, '')

    def _starting(self, inputs: Inputs, status: st.BrokerStatus,
                  raw: score_mod.Score) -> _Move:
        observing = self._observing(status)
        if observing is None:
            return self._settle(inputs, status, table.OBSERVED)
        # Joining the lockspace takes a while: start it meanwhile.
        return self._stay(observing, tuple(_readiness(status)[1]))

    # -- electing and starting ---------------------------------------------

    def _idle(self, inputs: Inputs, status: st.BrokerStatus,
              raw: score_mod.Score) -> _Move:
        missing = _readiness(status)[0]
        if missing or inputs.workload.running:
            return self._settle(inputs, status, '')
        observing = self._observing(status)
        if observing is not None:
            # The broker restarted: its view of the peers is too young.
            return self._stay(observing)
        cands = self._candidates(status, raw, inputs.workload)
        own = next((c for c in cands if c.is_self), None)
        if own is None:
            return self._stay('this host has no host_id')
        elsewhere = election.runner([c for c in cands if not c.is_self])
        if elsewhere is not None:
            return self._stay('workload runs on %s'
                              % election.host_name(elsewhere.host_id))
        best = election.best(cands)
        if best is None:
            return self._stay('no host may run the workload (score %d%s)'
                              % (raw.total, ': ' + raw.reason
                                 if raw.reason else ''))
        why = '%s has the best score %d' % (
            election.host_name(best.host_id), best.score)
        if best.host_id != own.host_id:
            return self._stay(why)
        return _Move(State.ACQUIRING, why, table.ELECTED,
                     (Action.START_WORKLOAD,))

    def _candidates(self, status: st.BrokerStatus, raw: score_mod.Score,
                    workload: WorkloadView) -> list[election.Candidate]:
        """The election's hosts, with this host's score of this step."""
        return [dataclasses.replace(c, score=raw.total, up=True,
                                    maintenance=False,
                                    runs_workload=workload.running)
                if c.is_self else c
                for c in election.candidates(status)]

    def _acquiring(self, inputs: Inputs,
                   launch: LaunchResult | None) -> _Move:
        if launch is None:
            if self._elapsed(inputs) < self.settings.start_timeout:
                return self._stay('waiting for the launch result')
            count = self._count_failed_start(inputs.now)
            return _Move(State.IDLE, 'no launch result within %g s (%s)'
                         % (self.settings.start_timeout, count),
                         table.NO_LAUNCH_RESULT)
        if launch.outcome == 'started':
            return _Move(State.WORKLOAD_STARTING, 'pid %s started with the '
                         'lease' % launch.pid, table.STARTED)
        if launch.outcome == 'busy':
            reason = 'lease held by another host'
            if launch.error:
                reason += ': ' + launch.error
            return _Move(State.IDLE, reason, table.BUSY)
        count = self._count_failed_start(inputs.now)
        return _Move(State.IDLE, '%s (%s)' % (
            launch.error or 'workload start failed', count),
            table.START_FAILED)

    # -- the workload here ---------------------------------------------------

    def _lost(self, inputs: Inputs, status: st.BrokerStatus,
              check_holder: bool) -> _Move | None:
        """The moves every running state shares: lease lost, gone."""
        workload = inputs.workload
        lockspace = status.fencing.lockspace.state
        if lockspace in _LOCKSPACE_LOST:
            return _Move(State.LEASE_LOST, 'lockspace %s' % lockspace,
                         table.LEASE_LOST)
        if not workload.running:
            return _Move(State.MAYBE_AWAY, 'workload %s is gone'
                         % _pid(workload), table.GONE)
        if check_holder and lockspace == st.LOCKSPACE_JOINED and not (
                _holds(workload, status) or _unconfirmed(workload, status)):
            return _Move(State.LEASE_LOST, '%s no longer holds the lease'
                         % _pid(workload), table.LEASE_LOST)
        return None

    def _monitor_asks(self, status: st.BrokerStatus) -> tuple[Action, ...]:
        # A restarted broker has no domain monitor: ask for it again.
        if status.domain.monitor in (st.DOMAIN_NEVER_STARTED,
                                     st.DOMAIN_STOPPED):
            return (Action.START_DOMAIN_MONITOR,)
        return ()

    def _workload_starting(self, inputs: Inputs, status: st.BrokerStatus,
                           raw: score_mod.Score) -> _Move:
        # The lease was acquired with the launch; the holder list of a
        # status read before that may not show it yet.
        lost = self._lost(inputs, status, check_holder=False)
        if lost is not None:
            return lost
        workload = inputs.workload
        if workload.healthy is not False:
            return _Move(State.RUNNING, 'workload healthy' if workload.healthy
                         else 'workload running (no health result)',
                         table.HEALTHY)
        if self._elapsed(inputs) >= self.settings.start_timeout:
            count = self._count_failed_start(inputs.now)
            return _Move(State.STOPPING, 'not healthy within %g s (%s)'
                         % (self.settings.start_timeout, count),
                         table.START_TIMEOUT)
        return self._stay('waiting for health: %s'
                          % (workload.health_detail or 'unhealthy'),
                          self._monitor_asks(status))

    def _running(self, inputs: Inputs, status: st.BrokerStatus,
                 raw: score_mod.Score) -> _Move:
        lost = self._lost(inputs, status, check_holder=True)
        if lost is not None:
            return lost
        workload = inputs.workload
        if workload.healthy is False:
            return _Move(State.RUNNING_BAD_HEALTH, 'health check failed: %s'
                         % (workload.health_detail or 'unhealthy'),
                         table.UNHEALTHY)
        cands = self._candidates(status, raw, workload)
        peer = election.best([c for c in cands if not c.is_self])
        fired, why = self._gate.check(
            raw.total, peer, self.settings.migrate_threshold,
            self.settings.migrate_after)
        if fired:
            return _Move(State.STOPPING, why, table.MIGRATE)
        if status.fencing.lockspace.state != st.LOCKSPACE_JOINED:
            why = 'lockspace %s; %s keeps running' % (
                status.fencing.lockspace.state, _pid(workload))
        return self._stay(why, self._monitor_asks(status))

    def _running_bad_health(self, inputs: Inputs, status: st.BrokerStatus,
                            raw: score_mod.Score) -> _Move:
        lost = self._lost(inputs, status, check_holder=True)
        if lost is not None:
            return lost
        workload = inputs.workload
        if workload.healthy is not False:
            return _Move(State.RUNNING, 'health restored', table.RECOVERED)
        timeout = self.settings.bad_health_timeout
        if self._elapsed(inputs) >= timeout:
            return _Move(State.STOPPING, 'health failed for %g s' % timeout,
                         table.BAD_HEALTH_TIMEOUT)
        return self._stay('health failing for %.0f of %g s: %s' % (
            self._elapsed(inputs), timeout,
            workload.health_detail or 'unhealthy'),
            self._monitor_asks(status))

    def _stopping(self, inputs: Inputs, status: st.BrokerStatus,
                  raw: score_mod.Score) -> _Move:
        if not inputs.workload.running:
            return self._stopped_move(status, 'workload stopped')
        timeout = self.settings.stop_timeout
        if self._elapsed(inputs) >= timeout:
            return _Move(State.FORCE_STOPPING, '%s did not stop within %g s'
                         % (_pid(inputs.workload), timeout),
                         table.STOP_TIMEOUT)
        return self._stay('waiting for %s to stop' % _pid(inputs.workload))

    def _force_stopping(self, inputs: Inputs, status: st.BrokerStatus,
                        raw: score_mod.Score) -> _Move:
        if not inputs.workload.running:
            return self._stopped_move(status, 'workload killed')
        return self._stay('killing %s' % _pid(inputs.workload),
                          (Action.KILL_WORKLOAD,))

    def _stopped_move(self, status: st.BrokerStatus, reason: str) -> _Move:
        if status.maintenance.local:
            return _Move(State.LOCAL_MAINTENANCE, reason + '; local '
                         'maintenance', table.STOPPED_LOCAL,
                         (Action.RELEASE_LEASE, Action.STOP_DOMAIN_MONITOR))
        return _Move(State.IDLE, reason, table.STOPPED,
                     (Action.RELEASE_LEASE,))

    def _maybe_away(self, inputs: Inputs, status: st.BrokerStatus,
                    raw: score_mod.Score) -> _Move:
        if inputs.workload.running:
            return _Move(State.RUNNING, 'workload %s is back'
                         % _pid(inputs.workload), table.BACK)
        timeout = self.settings.away_timeout
        if self._elapsed(inputs) >= timeout:
            return _Move(State.UNEXPECTEDLY_DOWN, 'workload gone for %g s'
                         % timeout, table.AWAY_TIMEOUT,
                         (Action.RELEASE_LEASE,))
        return self._stay('workload gone for %.0f of %g s'
                          % (self._elapsed(inputs), timeout))

    def _unexpectedly_down(self, inputs: Inputs, status: st.BrokerStatus,
                           raw: score_mod.Score) -> _Move:
        cool_down = self.settings.unexpected_down_time
        if self._elapsed(inputs) >= cool_down:
            return _Move(State.IDLE, 'cool-down of %g s over' % cool_down,
                         table.COOLED_DOWN)
        return self._stay('cooling down for %.0f of %g s'
                          % (self._elapsed(inputs), cool_down))

    def _lease_lost(self, inputs: Inputs, status: st.BrokerStatus,
                    raw: score_mod.Score) -> _Move:
        workload = inputs.workload
        lockspace = status.fencing.lockspace.state
        if lockspace != st.LOCKSPACE_JOINED:
            join = lockspace in (st.LOCKSPACE_LEFT, st.LOCKSPACE_FAILED)
            return self._stay('lease lost; lockspace %s' % lockspace,
                              (Action.JOIN_LOCKSPACE,) if join else ())
        if not workload.running:
            return _Move(State.IDLE, 'lockspace joined; the workload is gone',
                         table.REJOINED, (Action.RELEASE_LEASE,))
        if _holds(workload, status):
            return _Move(State.RUNNING, '%s holds the lease again'
                         % _pid(workload), table.LEASE_BACK)
        return _Move(State.STOPPING, '%s runs without the lease'
                     % _pid(workload), table.UNLEASED)
