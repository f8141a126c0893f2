"""One simulated host: its workload process, broker and agent loop.

:class:`SimHost` plays for the real :class:`~heartbeat.agent.fsm.Agent`
the part :class:`heartbeat.agent.loop.AgentLoop` plays in production:
every ``loop_interval`` (on the host's own clock, with jitter) it asks its
broker for the status, steps the agent, performs the actions it returns
(in order, through the broker model and the lease authority), steps again
at once after a launch, and posts the decision.  A broker that is down
answers nothing: the agent gets ``status=None``.

The workload is :class:`SimProcess`: started only once the lease is held
(the holder launcher lets it go after the acquire), healthy
``workload_start`` seconds later, gone ``workload_stop`` seconds after the
stop signal, at once when killed.  It outlives the agent: a new agent
finds it again (the pid file) and adopts it.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING

from heartbeat.agent import fsm
from heartbeat.broker import status as st
from heartbeat.testing.simulator.broker import SimBroker
from heartbeat.testing.simulator.clock import HostClock
from heartbeat.testing.simulator.clock import Timer

if TYPE_CHECKING:
    from heartbeat.testing.simulator.cluster import Cluster

BROKER_DOWN = 'cannot reach the broker: connection refused'


@dataclasses.dataclass
class SimProcess:
    """The protected workload's process on one host (true times)."""

    host: int
    pid: int
    launched: float
    ready_at: float
    running: bool = True
    ended: float | None = None
    end_reason: str = ''
    stop_timer: Timer | None = None

    def healthy_at(self) -> float | None:
        """When it first passed its health check (None: it never did)."""
        if self.ended is not None and self.ended < self.ready_at:
            return None
        return self.ready_at


@dataclasses.dataclass(frozen=True)
class LoopRecord:
    """What one agent step saw, kept to check migrations afterwards."""

    own_score: int
    #: The best score among up, non-maintenance peers (0: none).
    best_peer: int
    state: str


class SimHost:
    """One host of the simulated cluster; see the module docstring."""

    def __init__(self, world: Cluster, host_id: int,
                 clock: HostClock) -> None:
        self.world = world
        self.id = host_id
        self.clock = clock
        self.alive = False
        self.broker: SimBroker | None = None
        self.incarnations = 0
        self.agent: fsm.Agent | None = None
        self.loop_timer: Timer | None = None
        #: The process the agent's launcher knows (its pid file).
        self.workload: SimProcess | None = None
        self.launch: fsm.LaunchResult | None = None
        self.last: fsm.Decision | None = None
        self.loops: collections.deque[LoopRecord] = collections.deque(
            maxlen=max(1, world.settings.agent.migrate_after))
        # Faults may overlap: each counts how many hold it now.
        self.storage_lost_at: float | None = None
        self.storage_faults = 0
        self.broker_faults = 0
        self.agent_faults = 0
        self.maintenance_faults = 0
        self.health_faults = 0
        self.reachable = 1.0

    # -- facts the models read -------------------------------------------

    @property
    def storage_ok(self) -> bool:
        return self.storage_faults == 0

    @property
    def local_maintenance(self) -> bool:
        return self.maintenance_faults > 0

    def storage_lost_for(self) -> float:
        if self.storage_lost_at is None:
            return 0.0
        return self.world.clock.now() - self.storage_lost_at

    def process_running(self, pid: int) -> bool:
        return any(p.pid == pid for p in self.world.running(self.id))

    def healthy(self, proc: SimProcess) -> bool:
        return (proc.running and self.world.clock.now() >= proc.ready_at
                and self.health_faults == 0)

    # -- lifecycle ---------------------------------------------------------

    def boot(self) -> None:
        """Power on: sanlock outside the lockspace, broker, agent."""
        if self.alive:
            return
        self.alive = True
        self.world.authority.host_booted(self.id)
        self.start_broker()
        self.start_agent()

    def die(self) -> None:
        """Power off: every process stops at this instant."""
        if not self.alive:
            return
        self.world.authority.host_died(self.id)
        for proc in self.world.running(self.id):
            self.end_process(proc, 'host died')
        self.alive = False
        self.stop_broker()
        self.stop_agent(graceful=False)
        self.workload = None

    def start_broker(self) -> None:
        if not self.alive or self.broker_faults or self.broker is not None:
            return
        self.incarnations += 1
        self.broker = SimBroker(self.world, self, self.incarnations)
        self.broker.start()

    def stop_broker(self) -> None:
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def start_agent(self) -> None:
        if not self.alive or self.agent_faults or self.agent is not None:
            return
        self.agent = self.world.make_agent(self.clock.monotonic())
        self.loops.clear()
        self.loop_timer = self.world.clock.call_later(0.0, self.turn)

    def stop_agent(self, graceful: bool) -> None:
        if self.agent is None:
            return
        if graceful and self.alive:
            self._turn(shutdown=True)
        if self.loop_timer is not None:
            self.loop_timer.cancel()
        self.agent, self.launch, self.last = None, None, None

    # -- the workload process ---------------------------------------------

    def end_process(self, proc: SimProcess, reason: str) -> None:
        if not proc.running:
            return
        if proc.stop_timer is not None:
            proc.stop_timer.cancel()
        proc.running, proc.end_reason = False, reason
        proc.ended = self.world.clock.now()
        self.world.authority.process_exited(self.id, proc.pid)
        self.world.process_ended(proc)

    def kill_pid(self, pid: int, reason: str) -> None:
        for proc in self.world.running(self.id):
            if proc.pid == pid:
                self.end_process(proc, reason)

    def _view(self) -> fsm.WorkloadView:
        proc = self.workload
        if proc is None:
            return fsm.WorkloadView()
        if not proc.running:
            return fsm.WorkloadView(pid=proc.pid)
        if not self.world.settings.health_check:
            return fsm.WorkloadView(running=True, pid=proc.pid)
        healthy = self.healthy(proc)
        detail = '' if healthy else (
            'health check failing' if self.health_faults else 'starting')
        return fsm.WorkloadView(running=True, pid=proc.pid, healthy=healthy,
                                health_detail=detail)

    def _launch(self) -> fsm.LaunchResult:
        """Spawn, acquire the lease for the new pid, let it go."""
        pid = self.world.new_pid()
        outcome, error = self.world.authority.acquire(self.id, pid)
        self.world.record(self.id, 'lease', '%s pid %d%s' % (
            outcome, pid, ': ' + error if error else ''))
        if outcome != 'started':
            return fsm.LaunchResult(outcome, error=error)
        now = self.world.clock.now()
        proc = SimProcess(self.id, pid, now,
                          now + self.world.settings.workload_start)
        self.workload = proc
        self.world.process_started(proc)
        return fsm.LaunchResult('started', pid=pid)

    # -- the agent loop ----------------------------------------------------

    def turn(self) -> None:
        """One loop of the agent, then the next one is scheduled."""
        if self.agent is None or not self.alive:
            return
        self._turn(shutdown=False)
        sim = self.world.settings
        jitter = self.world.rng.uniform(-sim.loop_jitter, sim.loop_jitter)
        wait = self.clock.true_span(sim.agent.loop_interval) + jitter
        self.loop_timer = self.world.clock.call_later(max(0.01, wait),
                                                      self.turn)

    def _turn(self, shutdown: bool) -> None:
        broker = self.broker
        status = broker.status() if broker is not None else None
        decision = self._step(status, shutdown)
        if fsm.Action.START_WORKLOAD in decision.actions:
            # As the real loop does: decide on the launch's outcome now.
            decision = self._step(status, shutdown)
        if broker is not None:
            broker.put_state(decision.state.value, decision.score.total,
                             decision.payload())
        self.last = decision

    def _step(self, status: st.BrokerStatus | None,
              shutdown: bool) -> fsm.Decision:
        assert self.agent is not None
        inputs = fsm.Inputs(
            now=self.clock.monotonic(), wall=self.clock.wall(),
            status=status, broker_error='' if status else BROKER_DOWN,
            workload=self._view(), launch=self.launch, shutdown=shutdown)
        self.launch = None
        decision = self.agent.step(inputs)
        self.world.decided(self, status, decision)
        for action in decision.actions:
            self._act(action)
        return decision

    def _act(self, action: fsm.Action) -> None:
        world, broker, proc = self.world, self.broker, self.workload
        world.record(self.id, 'action', action.value)
        if action is fsm.Action.STOP_WORKLOAD:
            if proc is not None and proc.running and proc.stop_timer is None:
                world.stopping(self, proc)
                proc.stop_timer = world.clock.call_later(
                    world.settings.workload_stop,
                    lambda: self.end_process(proc, 'stopped'))
        elif action is fsm.Action.KILL_WORKLOAD:
            if proc is not None and proc.running:
                if proc.stop_timer is None:
                    world.stopping(self, proc)
                self.end_process(proc, 'killed')
        elif action is fsm.Action.RELEASE_LEASE:
            if proc is not None and broker is not None:
                world.authority.release(self.id, proc.pid)
            # The launcher forgets the pid whether the call worked or not.
            self.workload = None
        elif broker is None:
            return  # the other actions are broker calls
        elif action is fsm.Action.JOIN_LOCKSPACE:
            world.authority.join(self.id)
        elif action is fsm.Action.START_DOMAIN_MONITOR:
            broker.start_domain_monitor()
        elif action is fsm.Action.STOP_DOMAIN_MONITOR:
            broker.stop_domain_monitor()
        elif action is fsm.Action.START_WORKLOAD:
            self.launch = self._launch()
