"""A subscriber's bounded event queue that coalesces when it falls behind.

Events are delivered in order while fewer than ``maxsize`` wait.  Once the
queue is full, further events go to a per-member overflow table instead:
for each member it keeps the newest status event (joined, up, down, left)
and one state change merged from the oldest ``old_state`` to the newest
``new_state``.  Whatever the table replaces is counted as coalesced.  The
overflow is delivered after the in-order part, member by member, so a slow
subscriber still ends with the true current state of every member, and at
most ``maxsize`` plus two events per member ever wait, however long the
subscriber stalls.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

from heartbeat.model import Event
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged

Key = tuple[str, str]


@dataclasses.dataclass
class QueueCounters:
    """What happened to the events of one subscriber."""

    #: Events handed to the queue.
    received: int = 0
    #: Events handed out of the queue to the subscriber.
    delivered: int = 0
    #: Events replaced by newer ones for the same member.
    coalesced: int = 0
    #: Times the queue was full and started coalescing.
    overflows: int = 0
    #: Most events ever waiting at once.
    high_water: int = 0


@dataclasses.dataclass
class _Pending:
    status: Event | None = None
    state: MemberStateChanged | None = None
    #: A status event was delivered while ``state`` waited: it may have
    #: shown the subscriber a state in between.
    status_went_first: bool = False


class EventQueue:
    """Thread-safe, bounded, coalescing FIFO of events for one subscriber."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError('maxsize must be at least 1')
        self.maxsize = maxsize
        self.counters = QueueCounters()
        self._fifo: collections.deque[Event] = collections.deque()
        self._overflow: dict[Key, _Pending] = {}
        self._overflow_len = 0
        self._closed = False
        self._cond = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        with self._cond:
            return len(self._fifo) + self._overflow_len

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, event: Event) -> None:
        """Queue ``event``; never blocks, never grows beyond the bound."""
        with self._cond:
            if self._closed:
                return
            c = self.counters
            c.received += 1
            if not self._overflow and len(self._fifo) < self.maxsize:
                self._fifo.append(event)
            else:
                if not self._overflow:
                    c.overflows += 1
                self._coalesce(event)
            c.high_water = max(c.high_water,
                               len(self._fifo) + self._overflow_len)
            self._cond.notify()

    def _coalesce(self, event: Event) -> None:
        pending = self._overflow.get(event.key)
        if pending is None:
            pending = self._overflow[event.key] = _Pending()
        before = (pending.status is not None) + (pending.state is not None)
        if isinstance(event, MemberStateChanged):
            if pending.state is not None:
                merged = dataclasses.replace(
                    event, old_state=pending.state.old_state)
                # A change back to where it started cancels out, unless a
                # status event (pending or already delivered) shows a
                # state in between that the merged change must correct.
                status = pending.status
                if (merged.old_state == merged.new_state
                        and not pending.status_went_first
                        and (status is None
                             or status.report.state == merged.new_state)):
                    pending.state = None
                    self.counters.coalesced += 2
                else:
                    pending.state = merged
                    self.counters.coalesced += 1
            else:
                pending.state = event
        else:
            if pending.status is not None:
                self.counters.coalesced += 1
            pending.status = event
            if isinstance(event, MemberLeft) and pending.state is not None:
                # The state of a member that left no longer matters.
                self.counters.coalesced += 1
                pending.state = None
        after = (pending.status is not None) + (pending.state is not None)
        self._overflow_len += after - before
        if not after:
            del self._overflow[event.key]

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None once closed or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                event = self._pop()
                if event is not None:
                    self.counters.delivered += 1
                    return event
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)

    def _pop(self) -> Event | None:
        if self._fifo:
            return self._fifo.popleft()
        if not self._overflow:
            return None
        key = next(iter(self._overflow))
        pending = self._overflow[key]
        self._overflow_len -= 1
        if pending.status is not None:
            event: Event = pending.status
            pending.status = None
            pending.status_went_first = pending.state is not None
        else:
            assert pending.state is not None
            event = pending.state
            pending.state = None
            pending.status_went_first = False
        if pending.status is None and pending.state is None:
            del self._overflow[key]
        return event

    def close(self) -> None:
        """Wake every waiter; pending events are dropped."""
        with self._cond:
            self._closed = True
            self._fifo.clear()
            self._overflow.clear()
            self._overflow_len = 0
            self._cond.notify_all()
