"""When members go down: one min-heap of deadlines per group.

A member that may still go down has a deadline, the observer time of its
last change plus service_down_time.  Walking every member on every cycle to
find the ones past it costs O(members); the heap costs O(log members) per
member that is due, and nothing for the others.

The heap is lazy, so that a beat costs nothing here:

* an item is ``(last_change, member_id)``, the member's last change when
  the item was queued (service_down_time is the same for all, so this
  orders items by deadline without one more float per member);
* when a member beats, its item is left alone; when the item comes due the
  owner (:class:`~heartbeat.monitor.updater.Updater`) sees that the last
  change moved and queues the member again, at most once per
  service_down_time and member instead of once per beat;
* an item whose member is gone, already down, or queued again since, is
  dropped when it surfaces.

This module holds the heaps only; which items are still valid is decided
by the owner, which knows the members.
"""

from __future__ import annotations

from collections.abc import Iterator
import heapq

Item = tuple[float, str]


class Deadlines:
    """Per-group min-heaps of ``(last_change, member_id)``."""

    def __init__(self) -> None:
        self._heaps: dict[str, list[Item]] = {}

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def groups(self) -> list[str]:
        return list(self._heaps)

    def push(self, group: str, member_id: str, last_change: float) -> None:
        heap = self._heaps.get(group)
        if heap is None:
            heap = self._heaps[group] = []
        heapq.heappush(heap, (last_change, member_id))

    def first(self, group: str) -> Item | None:
        """The item with the earliest key of ``group`` (None: empty)."""
        heap = self._heaps.get(group)
        return heap[0] if heap else None

    def pop(self, group: str) -> Item:
        """Remove and return the first item of ``group``."""
        heap = self._heaps[group]
        item = heapq.heappop(heap)
        if not heap:
            del self._heaps[group]
        return item

    def due(self, group: str, now: float,
            down_time: float) -> Iterator[Item]:
        """Pop the items of ``group`` whose deadline passed at ``now``.

        Due means ``now - last_change >= down_time``, the comparison
        :func:`heartbeat.liveness.judge` makes, so that a popped member is
        judged down unless it changed since it was queued.  Push to the
        group only after the iteration.
        """
        heap = self._heaps.get(group)
        while heap and now - heap[0][0] >= down_time:
            yield heapq.heappop(heap)
        if heap is not None and not heap:
            self._heaps.pop(group, None)

    def forget(self, group: str | None) -> None:
        """Drop the heap of ``group`` (None: every heap)."""
        if group is None:
            self._heaps.clear()
        else:
            self._heaps.pop(group, None)
