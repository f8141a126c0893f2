"""The simulated cluster and :func:`simulate`, the entry point.

:class:`Cluster` wires the hosts, the board brokers post to, the lease
authority and the invariant checker to one :class:`VirtualClock`, applies
the faults of a schedule (it is the faults'
:class:`~heartbeat.testing.simulator.faults.World`), and records what
happens.  Every random choice (clock origins, boot times, loop jitter,
message delays) comes from one ``random.Random(seed)``; wall clock jumps
draw nothing from it, so a schedule with and without them makes the same
choices.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import itertools
import random

from heartbeat.agent import fsm
from heartbeat.agent.settings import AgentSettings
from heartbeat.broker import status as st
from heartbeat.testing.simulator.broker import Board
from heartbeat.testing.simulator.clock import HostClock
from heartbeat.testing.simulator.clock import VirtualClock
from heartbeat.testing.simulator.faults import Fault
from heartbeat.testing.simulator.host import LoopRecord
from heartbeat.testing.simulator.host import SimHost
from heartbeat.testing.simulator.host import SimProcess
from heartbeat.testing.simulator.invariants import Checker
from heartbeat.testing.simulator.lease import LeaseAuthority
from heartbeat.testing.simulator.result import SimEvent
from heartbeat.testing.simulator.result import SimResult
from heartbeat.testing.simulator.result import WorkloadInterval
from heartbeat.testing.simulator.settings import SimSettings
from heartbeat.testing.simulator.settings import SimulationError

#: make_agent(settings, now): the state machine each host runs.
AgentFactory = Callable[[AgentSettings, float], fsm.Agent]
#: How the cluster builds its lease authority (a test may break it).
AuthorityFactory = Callable[..., LeaseAuthority]


class Cluster:
    """N hosts on one virtual clock; see the module docstring."""

    def __init__(self, settings: SimSettings, hosts: int, seed: int, *,
                 faults: Sequence[Fault] = (),
                 authority: AuthorityFactory = LeaseAuthority,
                 agent_factory: AgentFactory = fsm.Agent,
                 keep_events: bool = True) -> None:
        settings.check()
        if hosts < 1:
            raise SimulationError('A cluster needs at least one host.')
        self.settings = settings
        self.seed = seed
        self.faults = tuple(sorted(faults, key=lambda f: f.at))
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        self.board = Board()
        self.authority = authority(self.clock, settings.sanlock,
                                   self._storage_ok, self._sanlock_kill)
        self.agent_factory = agent_factory
        self.keep_events = keep_events
        self.events: list[SimEvent] = []
        self.timeline: dict[int, list[tuple[float, str, str]]] = {}
        self.processes: list[SimProcess] = []
        self._running: list[SimProcess] = []
        self._pids = itertools.count(1001)
        self._partitions: list[frozenset[int]] = []
        self._delays: list[float] = []
        self._global = 0
        self.hosts: dict[int, SimHost] = {}
        for host_id in range(1, hosts + 1):
            clock = HostClock(
                self.clock, origin=self.rng.uniform(100.0, 1e6),
                drift=self.rng.uniform(-settings.clock_drift,
                                       settings.clock_drift),
                wall_origin=1.7e9 + self.rng.uniform(-1.0, 1.0))
            self.hosts[host_id] = SimHost(self, host_id, clock)
            self.timeline[host_id] = []
        times = [f.at for f in self.faults]
        times += [u for u in (f.until for f in self.faults) if u is not None]
        self.checker = Checker(self, times)

    # -- running -------------------------------------------------------------

    def run(self, duration: float) -> SimResult:
        """Boot every host, apply the faults, run for ``duration`` s."""
        for host in self.hosts.values():
            at = self.rng.uniform(0.0, self.settings.start_spread)
            self.clock.call_at(at, host.boot)
        for fault in self.faults:
            self.clock.call_at(fault.at, self._fault_begin(fault))
        steps = self.clock.run_until(duration, self.checker.instant)
        return SimResult(
            seed=self.seed, hosts=len(self.hosts), duration=duration,
            settings=self.settings, faults=self.faults, events=self.events,
            timeline=self.timeline, violations=self.checker.violations,
            workloads=[WorkloadInterval(p.host, p.pid, p.launched,
                                        p.healthy_at(), p.ended, p.end_reason)
                       for p in self.processes],
            failovers=self.checker.failovers(), steps=steps)

    def _fault_begin(self, fault: Fault) -> Callable[[], None]:
        def begin() -> None:
            hit = fault.begin(self)
            self.record(hit, 'fault', fault.describe())
            until = fault.until
            if until is not None:
                def end() -> None:
                    fault.end(self, hit)
                    self.record(hit, 'fault', 'end of ' + fault.describe())
                self.clock.call_at(until, end)
        return begin

    # -- what the hosts and checkers use -----------------------------------

    def record(self, host: int | None, kind: str, detail: str) -> None:
        if self.keep_events:
            self.events.append(SimEvent(self.clock.now(), host, kind,
                                        detail))

    def make_agent(self, now: float) -> fsm.Agent:
        return self.agent_factory(self.settings.agent, now)

    def new_pid(self) -> int:
        return next(self._pids)

    def running(self, host: int | None = None) -> list[SimProcess]:
        """Running workload processes (of ``host``, or all)."""
        return [p for p in self._running if host is None or p.host == host]

    def process_started(self, proc: SimProcess) -> None:
        self.processes.append(proc)
        self._running.append(proc)
        self.record(proc.host, 'workload', 'pid %d started' % proc.pid)

    def process_ended(self, proc: SimProcess) -> None:
        self._running.remove(proc)
        self.record(proc.host, 'workload', 'pid %d ended: %s'
                    % (proc.pid, proc.end_reason))

    def stopping(self, host: SimHost, proc: SimProcess) -> None:
        self.checker.stopping(host, proc)

    def decided(self, host: SimHost, status: st.BrokerStatus | None,
                decision: fsm.Decision) -> None:
        """Keep the timeline and what invariant 3 needs of each step."""
        if decision.changed:
            self.timeline[host.id].append((
                self.clock.now(), decision.state.value, decision.reason))
            self.record(host.id, 'state', '%s -> %s: %s' % (
                decision.old_state.value, decision.state.value,
                decision.reason))
        if status is None:
            return
        best = max((p.score or 0 for p in status.peers.members
                    if not p.is_self and p.host_id is not None
                    and p.up is True
                    and p.maintenance != st.MAINTENANCE_LOCAL), default=0)
        host.loops.append(LoopRecord(decision.score.total, best,
                                     decision.state.value))

    def can_see(self, observer: int, peer: int) -> bool:
        """Whether no partition separates the two hosts now."""
        return all((observer in side) == (peer in side)
                   for side in self._partitions)

    def delay(self) -> float:
        """How old the record a read sees may be, drawn for this read."""
        return (self.rng.uniform(0.0, self.settings.message_delay)
                + max(self._delays, default=0.0))

    def delay_now(self) -> float:
        """The longest delay a read may see now."""
        return self.settings.message_delay + max(self._delays, default=0.0)

    def _storage_ok(self, host: int) -> bool:
        return self.hosts[host].storage_ok

    def _sanlock_kill(self, host: int, pid: int, reason: str) -> None:
        self.record(host, 'sanlock', 'kills pid %d: %s' % (pid, reason))
        self.hosts[host].kill_pid(pid, reason)

    def _holder(self, host: SimHost) -> bool:
        return any(self.authority.holds(host.id, p.pid)
                   for p in self.running(host.id))

    # -- the World protocol (what faults do) --------------------------------

    def runner(self) -> int | None:
        hosts = sorted(p.host for p in self._running)
        return hosts[0] if hosts else None

    def host_ids(self) -> list[int]:
        return list(self.hosts)

    def kill_host(self, host: int) -> None:
        target = self.hosts[host]
        if target.alive and self._holder(target):
            self.checker.holder_lost(target, 'host died')
        target.die()

    def boot_host(self, host: int) -> None:
        self.hosts[host].boot()

    def set_storage(self, host: int, ok: bool) -> None:
        target = self.hosts[host]
        if not ok:
            if target.storage_ok:
                target.storage_lost_at = self.clock.now()
                if target.alive and self._holder(target):
                    self.checker.holder_lost(target, 'storage lost')
            target.storage_faults += 1
            return
        target.storage_faults = max(0, target.storage_faults - 1)
        if target.storage_ok:
            target.storage_lost_at = None

    def kill_broker(self, host: int) -> None:
        target = self.hosts[host]
        target.broker_faults += 1
        target.stop_broker()

    def start_broker(self, host: int) -> None:
        target = self.hosts[host]
        target.broker_faults = max(0, target.broker_faults - 1)
        target.start_broker()

    def kill_agent(self, host: int, graceful: bool) -> None:
        target = self.hosts[host]
        target.agent_faults += 1
        target.stop_agent(graceful)

    def start_agent(self, host: int) -> None:
        target = self.hosts[host]
        target.agent_faults = max(0, target.agent_faults - 1)
        target.start_agent()

    def partition(self, hosts: frozenset[int], on: bool) -> None:
        if on:
            self._partitions.append(hosts)
        elif hosts in self._partitions:
            self._partitions.remove(hosts)

    def jump_wall(self, host: int, delta: float) -> None:
        self.hosts[host].clock.jump(delta)

    def extra_delay(self, delay: float, on: bool) -> None:
        if on:
            self._delays.append(delay)
        elif delay in self._delays:
            self._delays.remove(delay)

    def local_maintenance(self, host: int, on: bool) -> None:
        target = self.hosts[host]
        target.maintenance_faults = max(
            0, target.maintenance_faults + (1 if on else -1))

    def global_maintenance(self, on: bool) -> None:
        self._global = max(0, self._global + (1 if on else -1))
        self.board.global_mode = (st.MAINTENANCE_GLOBAL if self._global
                                  else None)

    def network(self, host: int, reachable: float) -> None:
        self.hosts[host].reachable = min(1.0, max(0.0, reachable))

    def crash_workload(self, host: int) -> None:
        target = self.hosts[host]
        for proc in self.running(host):
            target.end_process(proc, 'crashed')

    def health(self, host: int, failing: bool) -> None:
        target = self.hosts[host]
        target.health_faults = max(
            0, target.health_faults + (1 if failing else -1))


def simulate(settings: SimSettings | None = None, hosts: int = 3,
             faults: Sequence[Fault] = (), duration: float = 600.0,
             seed: int = 0, *, authority: AuthorityFactory = LeaseAuthority,
             agent_factory: AgentFactory = fsm.Agent,
             keep_events: bool = True) -> SimResult:
    """Run ``hosts`` real agents for ``duration`` simulated seconds.

    ``faults`` happen on their schedule; the invariants are checked all
    along and broken ones are listed in :attr:`SimResult.violations`.  The
    same arguments always give the same result.  ``authority`` and
    ``agent_factory`` replace the lease model or the state machine (to
    try a variant, or to prove that a checker catches a broken one);
    ``keep_events=False`` skips the event log (faster).
    """
    cluster = Cluster(settings or SimSettings(), hosts, seed, faults=faults,
                      authority=authority, agent_factory=agent_factory,
                      keep_events=keep_events)
    return cluster.run(duration)
