"""One batched read per group per cycle, through the driver.

The fetcher decides how to read a set of watched groups with as few
requests as the driver allows:

* a driver with INCREMENTAL is asked per group for what changed since the
  cursor of its previous read (the first read of a group is complete);
* otherwise several groups of a BATCHED_READ driver are read in one
  request of every group, split per group here;
* otherwise each group is read on its own.

It keeps cursors and nothing else; it never judges and never retries (the
fetch loop reads again on its next cycle, and a failed read keeps its
cursor so no change is lost).
"""

from __future__ import annotations

from collections.abc import Collection

from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat.model import Report
from heartbeat.model import Snapshot

Read = tuple[str | None, Snapshot]


class Fetcher:
    """Reads groups through one driver, remembering incremental cursors."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        caps = driver.capabilities
        self.incremental = Capability.INCREMENTAL in caps
        self.batched = Capability.BATCHED_READ in caps
        self._cursors: dict[str | None, object] = {}
        #: Requests made to the driver so far.
        self.reads = 0

    def forget(self, group: str | None) -> None:
        """Drop the cursor of ``group``: its next read is complete."""
        self._cursors.pop(group, None)

    def fetch(self, groups: Collection[str | None],
              full: bool = False) -> list[Read]:
        """Read ``groups`` (None among them: every group).

        ``full`` asks for complete snapshots even from an incremental
        driver.  Raises the driver's HeartbeatError when a read fails.
        """
        if None in groups:
            return [self._read(None, full)]
        if not self.incremental and self.batched and len(groups) > 1:
            return split(self._read(None, full)[1], groups)
        return [self._read(group, full) for group in sorted(
            groups, key=lambda g: g or '')]

    def _read(self, group: str | None, full: bool) -> Read:
        since = None if full else self._cursors.get(group)
        self.reads += 1
        snapshot = self.driver.snapshot(group, since=since)
        if self.incremental:
            self._cursors[group] = snapshot.cursor
        return group, snapshot


def split(snapshot: Snapshot, groups: Collection[str | None]) -> list[Read]:
    """Split a snapshot of every group into one snapshot per group."""
    by_group: dict[str, list[Report]] = {g: [] for g in groups if g}
    for report in snapshot.reports:
        bucket = by_group.get(report.group)
        if bucket is not None:
            bucket.append(report)
    return [(group, Snapshot(tuple(reports), snapshot.invalid,
                             complete=snapshot.complete,
                             gone=tuple(k for k in snapshot.gone
                                        if k[0] == group),
                             cursor=snapshot.cursor))
            for group, reports in sorted(by_group.items())]
