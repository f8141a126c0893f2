"""This host's score: how well it can run the protected workload (pure).

The score starts at ``[agent] score_base`` (3400) and loses points for what
the broker's submonitors report:

* network: ``(1 - reachable fraction) x penalty_network``;
* cpu: the load per CPU averaged over ``cpu_window`` (see
  :class:`CpuWindow`), linear from 0 at ``cpu_load_low`` to
  ``penalty_cpu`` at ``cpu_load_high`` and above;
* memory: ``penalty_memory`` while less than ``[workload] memory_mb`` MiB
  is available, except while the workload runs here (it uses that memory);
* failed starts: ``penalty_failed_start`` for each recent one.

It is 0 when the storage domain is invalid, when ``max_start_failures``
starts failed recently, in local maintenance, or when the penalties eat the
whole base.  A reading that is missing or failed costs nothing (one bad
submonitor must not move the workload); it is named in ``notes``.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Any

from heartbeat.agent.settings import AgentSettings
from heartbeat.broker.status import BrokerStatus
from heartbeat.broker.status import SubmonitorReading

NETWORK = 'network'
CPU_LOAD = 'cpu_load'
FREE_MEMORY = 'free_memory'
STORAGE_DOMAIN = 'storage_domain'


@dataclasses.dataclass(frozen=True)
class Score:
    """A score, what it is made of, and why it is 0 if it is."""

    total: int
    #: 'base' -> the base; each penalty's name -> the points it takes, as
    #: a negative number (or 0).
    breakdown: dict[str, int]
    reason: str | None = None
    #: Readings that could not be scored (they cost nothing).
    notes: tuple[str, ...] = ()

    def zeroed(self, reason: str) -> Score:
        """This score forced to 0 for ``reason``.

        The breakdown and notes are kept so the penalties stay visible.
        """
        return dataclasses.replace(self, total=0, reason=reason)


class CpuWindow:
    """Time-weighted average of the CPU load readings over ``window`` s.

    Readings are joined by straight lines (trapezoids), so that readings
    that arrive unevenly weigh by the time they cover.  ``window`` may be
    changed between calls (live options).
    """

    def __init__(self, window: float = 900.0) -> None:
        self.window = window
        self._samples: collections.deque[tuple[float, float]] = (
            collections.deque())

    def add(self, now: float, value: float) -> None:
        """Record ``value`` read at ``now`` (monotonic seconds)."""
        # A clock that went back would make negative areas: start over.
        while self._samples and self._samples[-1][0] > now:
            self._samples.pop()
        self._samples.append((now, float(value)))
        self._drop_before(now - self.window)

    def average(self, now: float) -> float | None:
        """The average over ``[now - window, now]`` (None: no readings)."""
        self._drop_before(now - self.window)
        points = [(t, v) for t, v in self._samples if t <= now]
        if not points:
            return None
        span = points[-1][0] - points[0][0]
        if span <= 0:
            return sum(v for _, v in points) / len(points)
        area = sum((t1 - t0) * (v0 + v1) / 2
                   for (t0, v0), (t1, v1) in itertools.pairwise(points))
        return area / span

    def _drop_before(self, limit: float) -> None:
        while self._samples and self._samples[0][0] < limit:
            self._samples.popleft()


def number(reading: SubmonitorReading | None) -> float | None:
    """The numeric value of a reading, or None if it has none."""
    if reading is None or reading.error is not None:
        return None
    value: Any = reading.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _network(settings: AgentSettings, status: BrokerStatus,
             notes: list[str]) -> int:
    fraction = number(status.submonitors.get(NETWORK))
    if fraction is None:
        notes.append('network: no reading')
        return 0
    fraction = min(1.0, max(0.0, fraction))
    return -round((1.0 - fraction) * settings.penalty_network)


def _cpu(settings: AgentSettings, cpu_average: float | None,
         notes: list[str]) -> int:
    if cpu_average is None:
        notes.append('cpu_load: no reading')
        return 0
    low, high = settings.cpu_load_low, settings.cpu_load_high
    if cpu_average <= low:
        return 0
    if cpu_average >= high or high <= low:
        return -settings.penalty_cpu
    return -round((cpu_average - low) / (high - low) * settings.penalty_cpu)


def _memory(settings: AgentSettings, status: BrokerStatus,
            runs_workload: bool, notes: list[str]) -> int:
    if settings.memory_mb <= 0 or runs_workload:
        return 0
    free = number(status.submonitors.get(FREE_MEMORY))
    if free is None:
        notes.append('free_memory: no reading')
        return 0
    return -settings.penalty_memory if free < settings.memory_mb else 0


def domain_invalid(status: BrokerStatus) -> str | None:
    """Why the storage domain counts as invalid, or None if it does not.

    The storage_domain submonitor decides when it has a result; without
    one, a domain the monitor validated and found invalid counts.
    """
    reading = status.submonitors.get(STORAGE_DOMAIN)
    if reading is not None and reading.error is None and (
            reading.ok is not None):
        if reading.ok:
            return None
        return 'storage domain invalid%s' % (
            ': ' + reading.detail if reading.detail else '')
    if status.domain.validated and not status.domain.valid:
        return 'storage domain invalid%s' % (
            ': ' + status.domain.error if status.domain.error else '')
    return None


def compute(settings: AgentSettings, status: BrokerStatus,
            cpu_average: float | None, failed_starts: int,
            local_maintenance: bool, *,
            runs_workload: bool = False) -> Score:
    """Score this host from the broker's ``status``.

    ``cpu_average`` comes from a :class:`CpuWindow` (None: no reading);
    ``failed_starts`` counts the starts that failed within
    ``start_failure_expiry``; ``runs_workload`` says the workload runs
    here (its own memory use is then not held against the host).
    """
    notes: list[str] = []
    breakdown = {
        'base': settings.score_base,
        'network': _network(settings, status, notes),
        'cpu': _cpu(settings, cpu_average, notes),
        'memory': _memory(settings, status, runs_workload, notes),
        'failed_starts': -settings.penalty_failed_start * failed_starts,
    }
    score = Score(total=max(0, sum(breakdown.values())),
                  breakdown=breakdown, notes=tuple(notes))
    invalid = domain_invalid(status)
    if local_maintenance:
        return score.zeroed('local maintenance')
    if invalid is not None:
        return score.zeroed(invalid)
    if failed_starts >= settings.max_start_failures:
        return score.zeroed('%d failed starts (max_start_failures %d)'
                            % (failed_starts, settings.max_start_failures))
    if score.total == 0:
        return score.zeroed('the penalties take the whole base')
    return score
