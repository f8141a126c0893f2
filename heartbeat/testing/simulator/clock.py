"""The simulator's time: one true clock, an event queue, per-host clocks.

:class:`VirtualClock` holds the simulated true time and the queue of what
happens next; nothing in the simulator reads the real clock, so a run is a
pure function of its inputs.  :class:`HostClock` is what one host sees of
that time: a monotonic clock (its own origin and rate) and a wall clock
that faults may jump.  Both expose plain callables (``monotonic``,
``wall``), so the real components that take an injectable clock (for
example :class:`heartbeat.agent.loop.AgentLoop`) can run on them.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import heapq
import itertools

from heartbeat import exception


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


class VirtualClock:
    """Simulated true time and the events due at future instants.

    Events due at the same instant run in the order they were scheduled,
    which makes every run with the same inputs identical.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._queue: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """The current simulated time, in seconds."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at simulated time ``when`` (not before now)."""
        if when < self._now:
            raise ClockError('Cannot schedule at %.3f: the clock is at %.3f.'
                             % (when, self._now))
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
        through.  The clock is left at ``end``.
        """
        count = 0
        while self._queue and self._queue[0][0] <= end:
            when, _, timer = heapq.heappop(self._queue)
            if timer.cancelled:
                continue
            self._now = when
            timer.callback()
            count += 1
            if after_each is not None:
                after_each()
        self._now = max(self._now, end)
        return count


class HostClock:
    """The monotonic and wall clocks of one host, derived from true time.

    ``monotonic() = origin + (1 + drift) x true time``: each host has its
    own origin (its uptime) and may run slightly fast or slow.  The wall
    clock starts at ``wall_origin`` and moves by :meth:`jump` (NTP steps,
    an operator's ``date -s``); the monotonic clock never jumps.
    """

    def __init__(self, clock: VirtualClock, origin: float = 0.0,
                 drift: float = 0.0, wall_origin: float = 1.7e9) -> None:
        if not -0.5 < drift < 0.5:
            raise ClockError('A clock drift of %r is not a clock.' % drift)
        self._clock = clock
        self.origin = origin
        self.drift = drift
        self._wall_offset = wall_origin

    def monotonic(self) -> float:
        """This host's monotonic seconds."""
        return self.origin + (1.0 + self.drift) * self._clock.now()

    def wall(self) -> float:
        """This host's wall clock seconds (jumps included)."""
        return self._wall_offset + self._clock.now()

    def jump(self, delta: float) -> None:
        """Step the wall clock by ``delta`` seconds (either way)."""
        self._wall_offset += delta

    def true_span(self, local: float) -> float:
        """True seconds that pass while this host's clock moves ``local``."""
        return local / (1.0 + self.drift)
