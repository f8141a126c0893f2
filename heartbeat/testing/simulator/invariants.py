"""The invariants, checked while the simulation runs.

1. At no instant do two workload processes hold the lease, and no
   workload process runs without it (checked after every event, so at
   every instant the model goes through, not only at loop ends).
2. When the host that runs the workload dies or loses its storage, a
   live, ready host (state ``idle``, score > 0, broker, agent and storage
   up, no maintenance) runs a healthy workload within
   :meth:`~heartbeat.testing.simulator.settings.SimSettings.failover_bound`,
   if such a host exists then and no other fault starts or ends meanwhile.
3. A running workload is stopped by its agent only in local maintenance,
   while unhealthy, without the lease, or after ``migrate_after`` loops
   in a row in which a peer (up, not in maintenance) scored at least the
   host's own score plus ``migrate_threshold``, as its broker showed them.

The checker reads the model's facts (processes, lease records, faults),
never the reasons the agent gives, so a wrong decision cannot explain
itself away.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import TYPE_CHECKING

from heartbeat.agent.fsm import State
from heartbeat.broker import status as st
from heartbeat.testing.simulator.result import Failover
from heartbeat.testing.simulator.result import Violation

if TYPE_CHECKING:
    from heartbeat.testing.simulator.cluster import Cluster
    from heartbeat.testing.simulator.host import SimHost
    from heartbeat.testing.simulator.host import SimProcess


@dataclasses.dataclass
class _Loss:
    lost_at: float
    host: int
    cause: str
    bound: float
    checked: bool


class Checker:
    """Checks the three invariants of the module docstring on ``world``.

    ``fault_times`` are the instants at which faults start or end: a loss
    followed by one of them within its bound is not held to invariant 2.
    """

    def __init__(self, world: Cluster, fault_times: list[float]) -> None:
        self.world = world
        self.fault_times = sorted(fault_times)
        self.violations: list[Violation] = []
        self.losses: list[_Loss] = []
        self._active: set[tuple[object, ...]] = set()

    def _violate(self, invariant: int, message: str) -> None:
        now = self.world.clock.now()
        self.violations.append(Violation(now, invariant, message))
        self.world.record(None, 'violation', 'invariant %d: %s'
                          % (invariant, message))

    # -- 1: one holder -----------------------------------------------------

    def instant(self) -> None:
        """Invariant 1, after every event (each breach reported once)."""
        authority = self.world.authority
        running = self.world.running()
        holding = [p for p in running if authority.holds(p.host, p.pid)]
        found: dict[tuple[object, ...], str] = {}
        if len(holding) > 1:
            names = ', '.join('host-%d pid %d' % (p.host, p.pid)
                              for p in holding)
            found[('two', *(p.pid for p in holding))] = (
                'two workloads run holding the lease: %s' % names)
        for p in running:
            if p not in holding:
                found[('unleased', p.pid)] = (
                    'host-%d pid %d runs without the lease' % (p.host, p.pid))
        for key, message in found.items():
            if key not in self._active:
                self._violate(1, message)
        self._active = set(found)

    # -- 2: failover -------------------------------------------------------

    def holder_lost(self, host: SimHost, cause: str) -> None:
        """``host``, which runs the workload, is about to be lost."""
        world = self.world
        now = world.clock.now()
        bound = world.settings.failover_bound(world.delay_now())
        deadline = now + bound
        # The fault that hits the host is one of the times in the window;
        # any other (even at this very instant) makes it not quiet.
        first = bisect.bisect_left(self.fault_times, now)
        last = bisect.bisect_right(self.fault_times, deadline)
        quiet = last - first <= 1
        ready = [h.id for h in world.hosts.values()
                 if h is not host and self.eligible(h)]
        loss = _Loss(now, host.id, cause, bound, bool(quiet and ready))
        self.losses.append(loss)
        if loss.checked:
            world.clock.call_at(deadline, lambda: self._failover_due(loss))

    def eligible(self, host: SimHost) -> bool:
        """A host that should take the workload over (see invariant 2)."""
        last = host.last
        return (host.alive and host.broker is not None
                and host.agent is not None and host.storage_ok
                and not host.local_maintenance
                and self.world.board.global_mode != st.MAINTENANCE_GLOBAL
                and last is not None and last.state is State.IDLE
                and last.score.total > 0)

    def _failover_due(self, loss: _Loss) -> None:
        if self.recovery(loss.lost_at) is not None:
            return
        rows = []
        for h in self.world.hosts.values():
            last = h.last
            rows.append('host-%d %s' % (h.id, 'dead' if not h.alive else (
                'no agent' if last is None else '%s score %d (%s)' % (
                    last.state.value, last.score.total, last.reason))))
        self._violate(2, 'host-%d lost the workload at %.1f (%s) and no '
                      'host runs it %.1f s later: %s' % (
                          loss.host, loss.lost_at, loss.cause, loss.bound,
                          '; '.join(rows)))

    def recovery(self, since: float) -> SimProcess | None:
        """The first workload healthy after ``since`` (started after it)."""
        best: SimProcess | None = None
        for proc in self.world.processes:
            healthy = proc.healthy_at()
            if proc.launched < since or healthy is None or (
                    healthy > self.world.clock.now()):
                continue
            if best is None or healthy < (best.healthy_at() or 0.0):
                best = proc
        return best

    def failovers(self) -> list[Failover]:
        out = []
        for loss in self.losses:
            proc = self.recovery(loss.lost_at)
            out.append(Failover(
                loss.lost_at, loss.host, loss.cause, loss.bound,
                loss.checked,
                recovered_at=None if proc is None else proc.healthy_at(),
                on_host=None if proc is None else proc.host))
        return out

    # -- 3: no migration without the threshold -------------------------------

    def stopping(self, host: SimHost, proc: SimProcess) -> None:
        """The agent of ``host`` stops its running workload ``proc``."""
        world = self.world
        if host.local_maintenance or not host.healthy(proc):
            return
        lockspace = world.authority.lockspace(host.id)[0]
        if lockspace != st.LOCKSPACE_JOINED or not world.authority.holds(
                host.id, proc.pid):
            return
        agent = world.settings.agent
        loops = list(host.loops)
        if len(loops) >= agent.migrate_after and all(
                r.best_peer >= r.own_score + agent.migrate_threshold
                for r in loops[-agent.migrate_after:]):
            return
        seen = ', '.join('%s own %d best peer %d' % (
            r.state, r.own_score, r.best_peer) for r in loops)
        self._violate(3, 'host-%d stops its healthy, leased workload pid %d '
                      'without a reason; its last loops: %s (threshold %d, '
                      'after %d loops)' % (
                          host.id, proc.pid, seen or 'none',
                          agent.migrate_threshold, agent.migrate_after))
