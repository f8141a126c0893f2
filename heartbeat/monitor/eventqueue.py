"""A subscriber's bounded event queue: Down first, coalescing when behind.

Events wait in two lanes.  ``MemberDown`` and ``MemberLeft`` go to the
urgent lane, delivered before anything in the normal lane, so that a
member going down is never announced after a burst of Joined/Up events of
other members (the initial picture of a large group, a mass recovery).
Per member the order stays as it happened: an urgent event takes the
member's waiting events along into the urgent lane, and a member with
events in the urgent lane keeps using it until they are delivered.

Within a lane events are delivered in order while fewer than ``maxsize``
wait in all.  Once the queue is full, further events go to the lane's
per-member overflow table instead: for each member it keeps the newest
status event (joined, up, down, left) and one state change merged from
the oldest ``old_state`` to the newest ``new_state``.  Whatever the table
replaces is counted as coalesced.  A lane's overflow is delivered after its
in-order part, member by member, so a slow subscriber still ends with the
true current state of every member, and at most ``maxsize`` plus two
events per member that changed ever wait, however long the subscriber
stalls.

A new subscriber's picture (:mod:`heartbeat.monitor.picture`) is not
queued: it is described a few members at a time when nothing else waits,
within ``maxsize``.  Order: the urgent lane, what was described, the
normal lane, then more of the picture.  A change of a member the picture
has not described yet is left to its description; a Down or Left of such
a member has it described at once, into the urgent lane.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

from heartbeat.model import Event
from heartbeat.model import MemberDown
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.monitor.picture import Picture

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


@dataclasses.dataclass(slots=True)
class _Pending:
    status: Event | None = None
    state: MemberStateChanged | None = None
    #: A status event was delivered while ``state`` waited: it may have
    #: shown the subscriber a state in between.
    status_went_first: bool = False


#: Events delivered before every other kind.
URGENT = (MemberDown, MemberLeft)
#: Most members of a picture described at once.
PICTURE_BATCH = 256


class _Lane:
    """One lane: an in-order FIFO, then a per-member overflow table."""

    def __init__(self, counters: QueueCounters) -> None:
        self.counters = counters
        self.fifo: collections.deque[Event] = collections.deque()
        #: Events per member in ``fifo``.
        self.in_fifo: collections.Counter[Key] = collections.Counter()
        self.overflow: dict[Key, _Pending] = {}
        self.overflow_len = 0

    def __len__(self) -> int:
        return len(self.fifo) + self.overflow_len

    def holds(self, key: Key) -> bool:
        return bool(self.in_fifo[key]) or key in self.overflow

    def place(self, event: Event, room: bool) -> None:
        """Queue ``event`` in order if there is room, else coalesce it."""
        if not self.overflow and room:
            self.fifo.append(event)
            self.in_fifo[event.key] += 1
            return
        self._coalesce(event)

    def take(self, key: Key) -> tuple[list[Event], _Pending | None]:
        """Remove and return what waits for ``key``: in order, overflow."""
        taken: list[Event] = []
        if self.in_fifo[key]:
            kept: collections.deque[Event] = collections.deque()
            for event in self.fifo:
                (taken if event.key == key else kept).append(event)
            self.fifo = kept
        self.in_fifo.pop(key, None)
        pending = self.overflow.pop(key, None)
        if pending is not None:
            self.overflow_len -= ((pending.status is not None)
                                  + (pending.state is not None))
        return taken, pending

    def adopt(self, key: Key, pending: _Pending) -> None:
        """Take over another lane's overflow entry for ``key``."""
        if key in self.overflow:
            for event in (pending.status, pending.state):
                if event is not None:
                    self._coalesce(event)
            return
        self.overflow[key] = pending
        self.overflow_len += ((pending.status is not None)
                              + (pending.state is not None))

    def _coalesce(self, event: Event) -> None:
        pending = self.overflow.get(event.key)
        if pending is None:
            pending = self.overflow[event.key] = _Pending()
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
        self.overflow_len += after - before
        if not after:
            del self.overflow[event.key]

    def pop(self) -> Event | None:
        if self.fifo:
            event = self.fifo.popleft()
            self.in_fifo[event.key] -= 1
            if not self.in_fifo[event.key]:
                del self.in_fifo[event.key]
            return event
        if not self.overflow:
            return None
        key = next(iter(self.overflow))
        pending = self.overflow[key]
        self.overflow_len -= 1
        if pending.status is not None:
            out: Event = pending.status
            pending.status = None
            pending.status_went_first = pending.state is not None
        else:
            assert pending.state is not None
            out = pending.state
            pending.state = None
            pending.status_went_first = False
        if pending.status is None and pending.state is None:
            del self.overflow[key]
        return out

    def clear(self) -> None:
        self.fifo.clear()
        self.in_fifo.clear()
        self.overflow.clear()
        self.overflow_len = 0


class EventQueue:
    """Thread-safe, bounded, coalescing queue of events for one subscriber.

    See the module docstring: urgent events (Down, Left) first, per-member
    order kept, at most ``maxsize`` in order plus two per member that
    changed, a picture described within ``maxsize``.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError('maxsize must be at least 1')
        self.maxsize = maxsize
        self.counters = QueueCounters()
        self._urgent = _Lane(self.counters)
        self._normal = _Lane(self.counters)
        #: The picture still to describe, and what was described of it.
        self._picture: Picture | None = None
        self._shown: collections.deque[Event] = collections.deque()
        self._closed = False
        self._cond = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        """Events waiting (not counting the picture still to describe)."""
        with self._cond:
            return self._waiting()

    def _waiting(self) -> int:
        return len(self._urgent) + len(self._shown) + len(self._normal)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def picture_remaining(self) -> int:
        """Members of the picture not described yet."""
        picture = self._picture
        return 0 if picture is None else picture.remaining

    def _room(self) -> bool:
        return (len(self._urgent.fifo) + len(self._shown)
                + len(self._normal.fifo) < self.maxsize)

    def show(self, picture: Picture) -> None:
        """Deliver ``picture`` first (see the module docstring)."""
        with self._cond:
            if not self._closed and not picture.done:
                self._picture = picture
                self._cond.notify()

    def put(self, event: Event) -> None:
        """Queue ``event``; never blocks, never grows beyond the bound.

        Called with the lock of the picture being shown held (the
        monitor's, under which it dispatches).
        """
        with self._cond:
            if self._closed:
                return
            c = self.counters
            c.received += 1
            key = event.key
            urgent = self._urgent
            coalescing = bool(urgent.overflow or self._normal.overflow)
            picture = self._picture
            if picture is not None and picture.pending(key):
                # Its description will show the change; a Down or Left
                # has it described now, ahead of the others.
                c.coalesced += 1
                if isinstance(event, URGENT):
                    described = picture.now(key)
                    c.received += len(described)
                    for early in described:
                        urgent.place(early, self._room())
            elif isinstance(event, URGENT) or urgent.holds(key):
                if self._shown and isinstance(event, URGENT):
                    # Its described events go first, in the urgent lane.
                    shown = self._shown
                    self._shown = collections.deque(
                        e for e in shown if e.key != key)
                    for earlier in shown:
                        if earlier.key == key:
                            urgent.place(earlier, True)
                if self._normal.holds(key):
                    # Its earlier events go first, in the urgent lane.
                    taken, pending = self._normal.take(key)
                    for earlier in taken:
                        urgent.place(earlier, self._room())
                    if pending is not None:
                        urgent.adopt(key, pending)
                urgent.place(event, self._room())
            else:
                self._normal.place(event, self._room())
            if not coalescing and (urgent.overflow or self._normal.overflow):
                c.overflows += 1
            c.high_water = max(c.high_water, self._waiting())
            self._cond.notify()

    def _pop(self) -> Event | None:
        event = self._urgent.pop()
        if event is None and self._shown:
            event = self._shown.popleft()
        return event or self._normal.pop()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None once closed or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                while True:
                    event = self._pop()
                    if event is not None:
                        self.counters.delivered += 1
                        return event
                    if self._closed:
                        return None
                    if self._picture is not None:
                        break   # describe more of it, without this lock
                    if deadline is None:
                        self._cond.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return None
                        self._cond.wait(left)
            self._describe_more()

    def _describe_more(self) -> None:
        """Describe the next members of the picture, within the bound."""
        picture = self._picture
        if picture is None:
            return
        # The picture's lock first, as put() is called with it held.
        with picture.lock:
            with self._cond:
                if self._picture is not picture or self._waiting():
                    return
                count = max(1, min(PICTURE_BATCH, self.maxsize // 2))
                described = picture.next(count)
                if picture.done:
                    self._picture = None
                self._shown.extend(described)
                c = self.counters
                c.received += len(described)
                c.high_water = max(c.high_water, self._waiting())

    def close(self) -> None:
        """Wake every waiter; pending events are dropped."""
        with self._cond:
            self._closed = True
            self._urgent.clear()
            self._normal.clear()
            self._shown.clear()
            self._picture = None
            self._cond.notify_all()
