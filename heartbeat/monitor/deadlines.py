"""When members go down: one queue of deadlines (a lazy min-heap) per group.

A member that may still go down has a deadline, the observer time of its
last change plus service_down_time.  Walking every member on every cycle to
find the ones past it costs O(members); the heap costs O(log members) per
member that is due, and nothing for the others.

The heap is lazy, so that a beat costs nothing here:

* the heap holds the members' entries themselves (no item object per
  member), ordered by :attr:`QueuedEntry.scheduled`, the member's last
  change when it was queued (service_down_time is the same for all, so
  this orders them by deadline); entries queued with the newest key yet
  go to a FIFO beside the heap instead, already in order (see
  :class:`_Queue`);
* when a member beats, its entry stays where it is; when it comes first
  the owner (:class:`~heartbeat.monitor.updater.Updater`) sees that the
  last change moved and queues it again in place, at most once per
  service_down_time and member instead of once per beat;
* an entry whose member is gone or cannot go down any more (down, left)
  is dropped when it surfaces.

This module holds the queues only; which entries still count is decided by
the owner, which knows the members.  An entry is in at most one queue at a
time, and its ``scheduled`` is not None exactly while it is.
"""

from __future__ import annotations

import collections
import heapq
from typing import Generic
from typing import TypeVar

from heartbeat.model import Report
from heartbeat.monitor.repository import Entry


class QueuedEntry(Entry):
    """A repository entry that can wait in the deadline queues."""

    __slots__ = ('scheduled',)

    def __init__(self, report: Report, last_change: float) -> None:
        super().__init__(report, last_change)
        #: The entry's key when it was queued (None: not queued).
        self.scheduled: float | None = None

    def __lt__(self, other: QueuedEntry) -> bool:
        # Order in the heap, which holds only queued entries.
        assert self.scheduled is not None and other.scheduled is not None
        return self.scheduled < other.scheduled


#: The kind of entries a queue holds: QueuedEntry or its owner's subclass.
Q = TypeVar('Q', bound=QueuedEntry)


def key(entry: QueuedEntry) -> float:
    """The last change of a queued entry when it was queued."""
    assert entry.scheduled is not None, 'entry is not queued'
    return entry.scheduled


class _Queue(Generic[Q]):
    """The entries of one group: a FIFO and a heap.

    Entries are mostly queued at the time they change (their key is the
    newest yet), so they go to the FIFO, which stays in key order at no
    cost; the others (queued again with an older key) go to the heap.  The
    first entry is the earlier of the two heads.  A crowd seen at once
    (a monitor starting on a big group) thus comes due and is queued
    again without a sift through a big heap for each member.
    """

    __slots__ = ('fifo', 'heap')

    def __init__(self) -> None:
        self.fifo: collections.deque[Q] = collections.deque()
        self.heap: list[Q] = []

    def __len__(self) -> int:
        return len(self.fifo) + len(self.heap)

    def push(self, entry: Q) -> None:
        fifo = self.fifo
        if not fifo or key(entry) >= key(fifo[-1]):
            fifo.append(entry)
        else:
            heapq.heappush(self.heap, entry)

    def first(self) -> Q | None:
        fifo, heap = self.fifo, self.heap
        if fifo and (not heap or key(fifo[0]) <= key(heap[0])):
            return fifo[0]
        return heap[0] if heap else None

    def pop(self) -> Q:
        fifo, heap = self.fifo, self.heap
        if fifo and (not heap or key(fifo[0]) <= key(heap[0])):
            return fifo.popleft()
        return heapq.heappop(heap)


class Deadlines(Generic[Q]):
    """Per-group queues of entries, first the one queued earliest."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue[Q]] = {}

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def groups(self) -> list[str]:
        return list(self._queues)

    def push(self, group: str, entry: Q,
             last_change: float) -> None:
        """Queue ``entry`` (not queued yet) with key ``last_change``."""
        entry.scheduled = last_change
        queue = self._queues.get(group)
        if queue is None:
            queue = self._queues[group] = _Queue[Q]()
        queue.push(entry)

    def first(self, group: str) -> Q | None:
        """The queued entry of ``group`` with the earliest key, if any."""
        queue = self._queues.get(group)
        return queue.first() if queue is not None else None

    def pop(self, group: str) -> Q:
        """Unqueue and return the first entry of ``group``."""
        queue = self._queues[group]
        entry = queue.pop()
        entry.scheduled = None
        if not queue:
            del self._queues[group]
        return entry

    def requeue_first(self, group: str, last_change: float) -> None:
        """Queue the first entry of ``group`` again, at ``last_change``."""
        queue = self._queues[group]
        heap = queue.heap
        if heap and queue.first() is heap[0]:
            # One sift instead of a pop and a push.
            heap[0].scheduled = last_change
            heapq.heapreplace(heap, heap[0])
            return
        entry = queue.pop()
        entry.scheduled = last_change
        queue.push(entry)

    def forget(self, group: str | None) -> None:
        """Drop the queue of ``group`` (None: every queue)."""
        queues = (list(self._queues.values()) if group is None
                  else [self._queues.get(group, _Queue[Q]())])
        for queue in queues:
            for entry in (*queue.fifo, *queue.heap):
                entry.scheduled = None
        if group is None:
            self._queues.clear()
        else:
            self._queues.pop(group, None)


class Sooner(Generic[Q]):
    """Per-group heaps of deadlines that moved earlier than their queue.

    With ``phi_threshold`` a member's deadline follows its rhythm, and a
    change may bring it before the key its entry holds in
    :class:`Deadlines` (the lazy queue only ever finds deadlines that moved
    later).  Such a deadline is pushed here as ``(key, n, entry)``; the
    owner drops the items that no longer match their entry when they come
    first.  Empty without phi_threshold, and nearly so with it: a change
    moves the deadline earlier than the queued key only if the member's
    rhythm sped up by more than the time since it was queued.
    """

    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[float, int, Q]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def groups(self) -> list[str]:
        return list(self._heaps)

    def push(self, group: str, entry: Q, at: float) -> None:
        self._count += 1
        heapq.heappush(self._heaps.setdefault(group, []),
                       (at, self._count, entry))

    def first(self, group: str) -> tuple[float, Q] | None:
        heap = self._heaps.get(group)
        if not heap:
            return None
        return heap[0][0], heap[0][2]

    def pop(self, group: str) -> None:
        heap = self._heaps[group]
        heapq.heappop(heap)
        if not heap:
            del self._heaps[group]

    def forget(self, group: str | None) -> None:
        if group is None:
            self._heaps.clear()
        else:
            self._heaps.pop(group, None)
