"""When members go down: one min-heap of deadlines per group.

A member that may still go down has a deadline, the observer time of its
last change plus service_down_time.  Walking every member on every cycle to
find the ones past it costs O(members); the heap costs O(log members) per
member that is due, and nothing for the others.

The heap is lazy, so that a beat costs nothing here:

* the heap holds the members' entries themselves (no item object per
  member), ordered by :attr:`Entry.scheduled`, the member's last change
  when it was queued (service_down_time is the same for all, so this
  orders them by deadline);
* when a member beats, its entry stays where it is; when it comes first
  the owner (:class:`~heartbeat.monitor.updater.Updater`) sees that the
  last change moved and queues it again in place, at most once per
  service_down_time and member instead of once per beat;
* an entry whose member is gone or cannot go down any more (down, left)
  is dropped when it surfaces.

This module holds the heaps only; which entries still count is decided by
the owner, which knows the members.  An entry is in at most one heap at a
time, and its ``scheduled`` is not None exactly while it is.
"""

from __future__ import annotations

import heapq

from heartbeat.monitor.repository import Entry


def key(entry: Entry) -> float:
    """The last change of a queued entry when it was queued."""
    assert entry.scheduled is not None, 'entry is not queued'
    return entry.scheduled


class Deadlines:
    """Per-group min-heaps of queued entries."""

    def __init__(self) -> None:
        self._heaps: dict[str, list[Entry]] = {}

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def groups(self) -> list[str]:
        return list(self._heaps)

    def push(self, group: str, entry: Entry, last_change: float) -> None:
        """Queue ``entry`` (not queued yet) with key ``last_change``."""
        entry.scheduled = last_change
        heap = self._heaps.get(group)
        if heap is None:
            heap = self._heaps[group] = []
        heapq.heappush(heap, entry)

    def first(self, group: str) -> Entry | None:
        """The queued entry of ``group`` with the earliest key, if any."""
        heap = self._heaps.get(group)
        return heap[0] if heap else None

    def pop(self, group: str) -> Entry:
        """Unqueue and return the first entry of ``group``."""
        heap = self._heaps[group]
        entry = heapq.heappop(heap)
        entry.scheduled = None
        if not heap:
            del self._heaps[group]
        return entry

    def requeue_first(self, group: str, last_change: float) -> None:
        """Queue the first entry of ``group`` again, at ``last_change``.

        One sift through the heap instead of a pop and a push.
        """
        heap = self._heaps[group]
        entry = heap[0]
        entry.scheduled = last_change
        heapq.heapreplace(heap, entry)

    def forget(self, group: str | None) -> None:
        """Drop the heap of ``group`` (None: every heap)."""
        heaps = (list(self._heaps.values()) if group is None
                 else [self._heaps.get(group, [])])
        for heap in heaps:
            for entry in heap:
                entry.scheduled = None
        if group is None:
            self._heaps.clear()
        else:
            self._heaps.pop(group, None)
