"""The agent's loop: ask the broker, decide, act, post.

:class:`AgentLoop` is the thin shell around the pure state machine
(:mod:`heartbeat.agent.fsm`).  Each turn it reads the broker's status
(every call bounded by ``[agent] broker_timeout``), looks at the local
workload, feeds both and the time to :meth:`Agent.step
<heartbeat.agent.fsm.Agent.step>`, performs the actions it returns through
the broker and the workload launcher, and posts the new state, score and
score breakdown.  It talks to the world only through
:class:`~heartbeat.broker.client.BrokerClient` and
:mod:`heartbeat.workload`; it never waits on storage.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.agent import fsm
from heartbeat.agent import settings as settings_mod
from heartbeat.broker.client import BrokerClient
from heartbeat.broker import errors
from heartbeat.broker.status import BrokerStatus
from heartbeat import clock as clock_mod
from heartbeat import exception
from heartbeat.workload.errors import WorkloadBusy
from heartbeat.workload.health import HealthChecker
from heartbeat.workload.process import WorkloadProcess

LOG = logging.getLogger(__name__)

#: Broker error kinds that mean "the lease is held elsewhere" (normal).
BUSY_KINDS = ('LeaseBusy',)


class AgentLoop:
    """One host's agent; see the module docstring."""

    def __init__(self, conf: cfg.ConfigOpts, client: BrokerClient,
                 workload: WorkloadProcess, health: HealthChecker,
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC),
                 wall: Callable[[], float] = time.time) -> None:
        self.conf = conf
        self.client = client
        self.workload = workload
        self.health = health
        #: Decides and paces the loop (``clock.wait``).
        self.clock = clock_mod.as_clock(clock)
        self.wall = wall
        self.agent = fsm.Agent(settings_mod.from_conf(conf), self.clock())
        self.last: fsm.Decision | None = None
        self._launch: fsm.LaunchResult | None = None
        self._broker_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Adopt a workload already running here; start the loop thread."""
        adopted = self.workload.adopt()
        if adopted is not None:
            LOG.info('Adopted the workload already running here (pid %d).',
                     adopted.pid)
        self.health.start()
        self._thread = threading.Thread(target=self._run, name='agent-loop',
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop and post ``stopped``; the workload keeps running."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                LOG.warning('The agent loop did not end within %.0fs; '
                            'exiting without posting "stopped".', timeout)
            self._thread = None
        self.health.stop(timeout=2.0)
        self.client.close()

    def wake(self) -> None:
        """Run the next turn now (after a reload, for example)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock()
            try:
                self.turn()
            except Exception:
                # One bad turn must not end the agent: the next one retries.
                LOG.exception('Agent loop turn failed; retrying')
            interval = self.conf.agent.loop_interval
            spent = self.clock() - started
            if spent > interval:
                LOG.warning('An agent loop took %.1fs, longer than [agent] '
                            'loop_interval (%.1fs).', spent, interval)
            self.clock.wait(self._wake, max(0.0, interval - spent))
            self._wake.clear()
        self.turn(shutdown=True)

    # -- one turn ------------------------------------------------------------

    def turn(self, shutdown: bool = False) -> fsm.Decision:
        """One loop: status, decision, actions, post; returns the decision."""
        self.agent.settings = settings_mod.from_conf(self.conf)
        status = self._status()
        decision = self._step(status, shutdown)
        if fsm.Action.START_WORKLOAD in decision.actions:
            # The launch's outcome is known now: decide on it at once
            # instead of one loop later.
            decision = self._step(status, shutdown)
        self._post(decision)
        self.last = decision
        return decision

    def _step(self, status: BrokerStatus | None,
              shutdown: bool) -> fsm.Decision:
        inputs = fsm.Inputs(
            now=self.clock(), wall=self.wall(), status=status,
            broker_error=self._broker_error or '',
            workload=self._workload_view(), launch=self._launch,
            shutdown=shutdown)
        self._launch = None
        decision = self.agent.step(inputs)
        if decision.changed:
            LOG.info('Agent %s -> %s: %s', decision.old_state.value,
                     decision.state.value, decision.reason)
        for action in decision.actions:
            self._act(action, status)
        return decision

    def _status(self) -> BrokerStatus | None:
        error = None
        try:
            status = self.client.get_status(
                timeout=self.conf.agent.broker_timeout)
        except exception.HeartbeatError as err:
            error = str(err)
        if error is not None:
            # Logged outside the handler: oslo.log would append the
            # exception again to a warning logged inside it.
            if self._broker_error is None:
                LOG.warning('No answer from the broker (%s); the agent waits '
                            'and changes nothing meanwhile.', error)
            self._broker_error = error
            return None
        if self._broker_error is not None:
            LOG.info('The broker answers again.')
        self._broker_error = None
        return status

    def _workload_view(self) -> fsm.WorkloadView:
        running = self.workload.running()
        identity = self.workload.identity
        result = self.health.latest()
        return fsm.WorkloadView(
            running=running, pid=identity.pid if identity else None,
            healthy=result.healthy, health_detail=result.detail,
            health_age_s=result.age_s)

    def _post(self, decision: fsm.Decision) -> None:
        if not decision.broker_reachable and not decision.changed:
            return
        payload = decision.payload()
        health = self.health.latest()
        if self.health.configured:
            # The broker's workload_health submonitor reads it from here.
            payload['agent']['health'] = {
                'healthy': health.healthy, 'detail': health.detail,
                'age_s': health.age_s}
        try:
            self.client.put_state(decision.state.value, decision.score.total,
                                  payload,
                                  timeout=self.conf.agent.broker_timeout)
        except exception.HeartbeatError as err:
            LOG.debug('Could not post the agent state: %s', err)

    # -- actions -------------------------------------------------------------

    def _act(self, action: fsm.Action, status: BrokerStatus | None) -> None:
        timeout = self.conf.agent.broker_timeout
        try:
            if action is fsm.Action.JOIN_LOCKSPACE:
                self.client.lockspace_join(timeout=timeout)
            elif action is fsm.Action.START_DOMAIN_MONITOR:
                self.client.start_domain_monitor(timeout=timeout)
            elif action is fsm.Action.STOP_DOMAIN_MONITOR:
                self.client.stop_domain_monitor(timeout=timeout)
            elif action is fsm.Action.START_WORKLOAD:
                self._launch = self._start_workload(status)
            elif action is fsm.Action.STOP_WORKLOAD:
                self.workload.stop()
            elif action is fsm.Action.KILL_WORKLOAD:
                self.workload.kill()
            elif action is fsm.Action.RELEASE_LEASE:
                self._release()
        except exception.HeartbeatError as err:
            failed = str(err)
        else:
            return
        LOG.warning('Agent action %s failed: %s', action.value, failed)

    def _start_workload(self, status: BrokerStatus | None
                        ) -> fsm.LaunchResult:
        """Launch, acquire the lease for the launched pid, then let it go."""
        fencer = None if status is None else status.fencing.fencer
        self.workload.register = fencer == 'sanlock'
        self.workload.flock = (os.path.abspath(self.conf.fencing.lease_path)
                               if fencer == 'flock' else None)
        try:
            pending = self.workload.spawn()
        except WorkloadBusy as err:
            return fsm.LaunchResult('busy', error=str(err))
        except exception.HeartbeatError as err:
            return fsm.LaunchResult('failed', error=str(err))
        try:
            self.client.acquire_lease(pending.pid,
                                      timeout=self.conf.agent.broker_timeout)
        except errors.RemoteError as err:
            pending.abort()
            if err.kind in BUSY_KINDS:
                return fsm.LaunchResult('busy', error=err.message)
            return fsm.LaunchResult('failed', error=err.message)
        except exception.HeartbeatError as err:
            # The call may or may not have run on the broker: the aborted
            # launcher exits, which ends a lease it may have got.
            pending.abort()
            return fsm.LaunchResult('failed', error=str(err))
        try:
            identity = pending.go()
        except exception.HeartbeatError as err:
            # The launcher could not run the command (or record it): the
            # process is gone and its lease with it.
            return fsm.LaunchResult('failed', error=str(err))
        self.health.reset()
        LOG.info('Workload started as pid %d with its lease held.',
                 identity.pid)
        return fsm.LaunchResult('started', pid=identity.pid)

    def _release(self) -> None:
        identity = self.workload.identity
        if identity is not None:
            try:
                self.client.release_lease(
                    identity.pid, timeout=self.conf.agent.broker_timeout)
            except exception.HeartbeatError as err:
                # The lease ends with its holder process anyway.
                LOG.debug('release_lease(%d): %s', identity.pid, err)
        self.workload.forget()
