"""Latency histograms kept without prometheus-client.

The places that already time something (the broker's dispatcher, the
reporter, the monitor loop) record into a :class:`Timings`; the collectors
of :mod:`heartbeat.metrics.collectors` read them at scrape time.  Nothing
here imports prometheus-client, so the library runs without it, and a
record is one bisect and two additions under a lock.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
import dataclasses
import threading

#: Upper bounds (seconds) of the default buckets: sub-millisecond RPCs up to
#: detection latencies of minutes.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A histogram at one instant.

    ``buckets`` are (upper bound, cumulative count) pairs, the last bound
    being ``inf`` (its count is ``count``).
    """

    buckets: tuple[tuple[float, int], ...]
    count: int
    total: float


class Histogram:
    """Counts of observed durations per bucket, their number and sum."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self._counts = [0] * (len(self.bounds) + 1)
        self._total = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[index] += 1
            self._total += seconds

    def snapshot(self) -> Snapshot:
        with self._lock:
            counts = list(self._counts)
            total = self._total
        out: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float('inf')), counts,
                                strict=True):
            running += count
            out.append((bound, running))
        return Snapshot(tuple(out), running, total)


class Timings:
    """One :class:`Histogram` per key (an RPC method, a group...)."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self._by_key: dict[str, Histogram] = {}
        self._lock = threading.Lock()

    def observe(self, key: str, seconds: float) -> None:
        histogram = self._by_key.get(key)
        if histogram is None:
            with self._lock:
                histogram = self._by_key.setdefault(
                    key, Histogram(self.buckets))
        histogram.observe(seconds)

    def snapshots(self) -> list[tuple[str, Snapshot]]:
        """Every key's snapshot, by key."""
        with self._lock:
            items = sorted(self._by_key.items())
        return [(key, hist.snapshot()) for key, hist in items]
