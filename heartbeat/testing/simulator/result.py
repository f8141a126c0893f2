"""What a simulation returns: :class:`SimResult` and its parts."""

from __future__ import annotations

import dataclasses
from typing import Any

from heartbeat.testing.simulator.faults import Fault
from heartbeat.testing.simulator.settings import SimSettings

#: The invariants, by number, as violations name them.
INVARIANTS = {
    1: 'never two workloads holding the lease, never one without it',
    2: 'the workload runs again within the failover bound of a holder\'s '
       'loss',
    3: 'a running workload stops only for the threshold, maintenance, '
       'health or the lease',
}


@dataclasses.dataclass(frozen=True)
class SimEvent:
    """Something that happened, at true time ``t``."""

    t: float
    host: int | None
    kind: str
    detail: str


@dataclasses.dataclass(frozen=True)
class Violation:
    """An invariant that did not hold at ``t``."""

    t: float
    invariant: int
    message: str

    def __str__(self) -> str:
        return 'at %.1f s invariant %d (%s): %s' % (
            self.t, self.invariant, INVARIANTS[self.invariant], self.message)


@dataclasses.dataclass(frozen=True)
class WorkloadInterval:
    """One run of the workload process (true times)."""

    host: int
    pid: int
    launched: float
    healthy_at: float | None
    ended: float | None
    end_reason: str = ''


@dataclasses.dataclass(frozen=True)
class Failover:
    """A host lost the running workload; when did it run again?"""

    lost_at: float
    host: int
    cause: str
    #: The failover bound of invariant 2 for this loss.
    bound: float
    #: Whether invariant 2 applied (an eligible host, no later fault).
    checked: bool
    recovered_at: float | None = None
    on_host: int | None = None

    @property
    def took(self) -> float | None:
        if self.recovered_at is None:
            return None
        return self.recovered_at - self.lost_at


@dataclasses.dataclass
class SimResult:
    """Everything a run produced; :attr:`ok` when no invariant broke."""

    seed: int
    hosts: int
    duration: float
    settings: SimSettings
    faults: tuple[Fault, ...]
    events: list[SimEvent]
    #: host -> [(t, state, reason)], one row per state change.
    timeline: dict[int, list[tuple[float, str, str]]]
    violations: list[Violation]
    workloads: list[WorkloadInterval]
    failovers: list[Failover]
    #: Events the virtual clock ran.
    steps: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def states(self) -> list[tuple[float, int, str]]:
        """Every state change of every host, in time order."""
        rows = [(t, host, state) for host, changes in self.timeline.items()
                for t, state, _ in changes]
        return sorted(rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the CLI's ``--json``)."""
        return {
            'seed': self.seed, 'hosts': self.hosts,
            'duration': self.duration, 'ok': self.ok, 'steps': self.steps,
            'settings': dataclasses.asdict(self.settings),
            'faults': [f.to_dict() for f in self.faults],
            'violations': [dataclasses.asdict(v) for v in self.violations],
            'workloads': [dataclasses.asdict(w) for w in self.workloads],
            'failovers': [dict(dataclasses.asdict(f), took=f.took)
                          for f in self.failovers],
            'timeline': {str(h): [list(row) for row in rows]
                         for h, rows in self.timeline.items()},
            'events': [dataclasses.asdict(e) for e in self.events],
        }

    def summary(self) -> str:
        """A short human report: faults, workload runs, violations."""
        lines = ['%d hosts, %.0f s, seed %d: %s' % (
            self.hosts, self.duration, self.seed,
            'all invariants held' if self.ok
            else '%d violation(s)' % len(self.violations))]
        lines += ['  fault   %s' % f.describe() for f in self.faults]
        for w in self.workloads:
            lines.append('  run     host-%d pid %d from %.1f%s to %s (%s)' % (
                w.host, w.pid, w.launched,
                '' if w.healthy_at is None
                else ' healthy %.1f' % w.healthy_at,
                'end' if w.ended is None else '%.1f' % w.ended,
                w.end_reason or 'running'))
        for f in self.failovers:
            lines.append('  lost    host-%d at %.1f (%s): %s' % (
                f.host, f.lost_at, f.cause,
                'running on host-%s after %.1f s (bound %.1f s%s)' % (
                    f.on_host, f.took, f.bound,
                    '' if f.checked else ', not checked')
                if f.took is not None else 'not running again'))
        lines += ['  VIOLATION %s' % v for v in self.violations]
        return '\n'.join(lines)
