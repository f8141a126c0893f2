"""Virtual time: the one fake :class:`heartbeat.clock.Clock` of the tests.

:class:`VirtualClock` holds a simulated time and a queue of callbacks due
at future instants; nothing reads the real clock, so what happens on it
is a pure function of how it is moved.  The simulator runs a whole
cluster on one (:mod:`heartbeat.testing.simulator`); a unit test hands
one to a background loop as its ``clock`` and moves time instead of
sleeping::

    clock = VirtualClock()
    mon = DomainMonitor(probe, interval=lambda: 5.0, timeout=..., clock=clock)
    mon.start()
    clock.wait_for_sleepers()       # the first probe ran; the loop sleeps
    clock.advance(5.0)              # its 5 s are up: the second probe runs
    clock.wait_for_sleepers()

A loop thread's :meth:`VirtualClock.wait` returns as soon as the event is
set (or the condition notified), as a real wait does, and otherwise when
another thread moves the time past its deadline.  With
``advance_on_wait=True`` the waiting thread moves the time itself: every
timeout passes at once, which suits a test that only needs the timeouts
to have happened, not when.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import heapq
import itertools
import math
import threading
import time

from heartbeat.clock import Clock
from heartbeat.clock import Waitable
from heartbeat import exception

#: Real seconds between two looks at an event by a thread waiting on it.
POLL = 0.001

#: Real seconds a thread waits on a condition before it looks again
#: (moving the time notifies it; this is only a safety net).
CONDITION_POLL = 5.0


class ClockError(exception.HeartbeatError):
    """An event was scheduled in the past of the virtual clock."""


@dataclasses.dataclass
class Timer:
    """A scheduled callback; :meth:`cancel` keeps it from running."""

    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock(Clock):
    """Simulated time, the events due at future instants, fake waits.

    Events due at the same instant run in the order they were scheduled,
    which makes every run with the same inputs identical.  Events run in
    the thread that moves the time.
    """

    def __init__(self, start: float = 0.0,
                 advance_on_wait: bool = False) -> None:
        self._now = start
        self._queue: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self.advance_on_wait = advance_on_wait
        # Guards the queue and the moves of time (loops and the test may
        # move it from different threads); reentrant for callbacks that
        # schedule more.
        self._lock = threading.RLock()
        self._sleepers: dict[int, tuple[float, Waitable]] = {}
        #: How many waits for a future deadline began so far: a test sees
        #: a loop that was woken go back to sleep when this grows.
        self.waits_begun = 0

    def now(self) -> float:
        """The current simulated time, in seconds."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at simulated time ``when`` (not before now)."""
        with self._lock:
            if when < self._now:
                raise ClockError('Cannot schedule at %.3f: the clock is at '
                                 '%.3f.' % (when, self._now))
            timer = Timer(when, callback)
            heapq.heappush(self._queue, (when, next(self._order), timer))
            return timer

    def call_later(self, delay: float,
                   callback: Callable[[], None]) -> Timer:
        """Run ``callback`` ``delay`` seconds from now."""
        return self.call_at(self._now + max(0.0, delay), callback)

    def run_until(self, end: float,
                  after_each: Callable[[], None] | None = None) -> int:
        """Run the events due up to ``end``; return how many ran.

        ``after_each`` is called after every event, at the event's
        instant, so that a checker sees every state the model goes
        through.  The clock is left at ``end`` (never moved back).
        """
        count = 0
        with self._lock:
            while self._queue and self._queue[0][0] <= end:
                when, _, timer = heapq.heappop(self._queue)
                if timer.cancelled:
                    continue
                self._now = max(self._now, when)
                timer.callback()
                count += 1
                if after_each is not None:
                    after_each()
            self._now = max(self._now, end)
            due = [waitable for deadline, waitable in self._sleepers.values()
                   if deadline <= self._now
                   and isinstance(waitable, threading.Condition)]
        # Outside our lock: a waiter holds its condition's lock when it
        # takes ours.
        for cond in due:
            with cond:
                cond.notify_all()
        return count

    def advance(self, seconds: float) -> int:
        """Move the time ``seconds`` on (running what falls due)."""
        return self.run_until(self._now + seconds)

    # -- waiting -----------------------------------------------------------

    def wait(self, waitable: Waitable, timeout: float) -> bool:
        """Wait on ``waitable`` until ``timeout`` virtual seconds passed.

        True as soon as it is set or notified; False once the virtual
        time reaches the deadline, moved by another thread (or, with
        ``advance_on_wait``, by this one at once).  Never sleeps longer
        than :data:`POLL` real seconds between two looks at an event; a
        condition is notified when the time is moved past its deadline.
        """
        if waitable.wait(0):
            return True
        deadline = self._now + max(0.0, timeout)
        if self._now >= deadline:
            return False
        if self.advance_on_wait and math.isfinite(deadline):
            self.run_until(deadline)
            return waitable.wait(0)
        with self._lock:
            token = self.waits_begun
            self.waits_begun += 1
            self._sleepers[token] = (deadline, waitable)
        try:
            if isinstance(waitable, threading.Condition):
                return self._wait_condition(waitable, deadline)
            while self._now < deadline:
                if waitable.wait(POLL):
                    return True
            return waitable.wait(0)
        finally:
            with self._lock:
                del self._sleepers[token]

    def _wait_condition(self, cond: threading.Condition,
                        deadline: float) -> bool:
        # Not woken by short timeouts: a notify that comes as a timeout
        # ends is lost (eventlet makes that likely), and a fake wait has
        # no later look to make up for it.  run_until notifies instead;
        # it moves the time before it takes the condition's lock, and the
        # time is read here with that lock held, so no move is missed.
        while self._now < deadline:
            if cond.wait(CONDITION_POLL):
                # A notify from the loop's own code, or the time moved.
                return self._now < deadline
        return False

    def sleepers(self) -> int:
        """How many threads wait for a deadline still in the future."""
        with self._lock:
            return sum(1 for deadline, _ in self._sleepers.values()
                       if deadline > self._now)

    def next_wakeup(self) -> float | None:
        """The earliest deadline a thread waits for (None: nobody waits)."""
        with self._lock:
            return min((deadline for deadline, _ in self._sleepers.values()),
                       default=None)

    def wait_for_sleepers(self, count: int = 1,
                          timeout: float = 10.0) -> None:
        """Block (in real time) until ``count`` threads wait on this clock.

        After :meth:`advance`, this is how a test knows that the loops
        it drives have done what fell due and sleep again.  Raises
        AssertionError after ``timeout`` real seconds.
        """
        deadline = time.monotonic() + timeout
        while self.sleepers() < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    '%d thread(s) waiting on the virtual clock within %.1fs, '
                    'expected %d' % (self.sleepers(), timeout, count))
            time.sleep(POLL)
