"""The simulator's time: one true clock, an event queue, per-host clocks.

:class:`VirtualClock` (from :mod:`heartbeat.testing.clock`, the fake
clock of every test) holds the simulated true time and the queue of what
happens next; nothing in the simulator reads the real clock, so a run is a
pure function of its inputs.  :class:`HostClock` is what one host sees of
that time: a monotonic clock (its own origin and rate) and a wall clock
that faults may jump.  Both expose plain callables (``monotonic``,
``wall``), so the real components that take an injectable clock (for
example :class:`heartbeat.agent.loop.AgentLoop`) can run on them.
"""

from __future__ import annotations

from heartbeat.testing.clock import ClockError
from heartbeat.testing.clock import Timer
from heartbeat.testing.clock import VirtualClock

__all__ = ['ClockError', 'HostClock', 'Timer', 'VirtualClock']


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
