"""Monotonic time and the waits measured on it, as one injectable pair.

Background loops decide on :meth:`Clock.now` and sleep with
:meth:`Clock.wait`, never with ``time.monotonic()`` and
``Event.wait(timeout)`` directly, so that a test can hand them a fake clock
whose waits end when the test moves time instead of after real seconds
(:class:`heartbeat.testing.clock.VirtualClock`).

A :class:`Clock` is also a plain ``Callable[[], float]`` (calling it is
:meth:`Clock.now`), so it can be passed wherever a bare clock function is
taken.  Code that used to take a bare function keeps taking one:
:func:`as_clock` pairs it with real waits.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
import time
from typing import Protocol
from typing import TypeVar

T = TypeVar('T')


class Waitable(Protocol):
    """What a loop sleeps on: a ``threading.Event`` or ``Condition``.

    For a Condition, the caller holds its lock, as for
    ``Condition.wait``.
    """

    def wait(self, timeout: float | None = None) -> bool:
        ...  # pragma: no cover


class Clock:
    """The real pair: ``time.monotonic`` and the waitable's own wait."""

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def __call__(self) -> float:
        return self.now()

    def wait(self, waitable: Waitable, timeout: float) -> bool:
        """Wait on ``waitable`` for at most ``timeout`` seconds of this clock.

        Returns what ``waitable.wait`` returns: True when the event is set
        (or the condition notified), False when the time ran out.
        """
        return waitable.wait(timeout)


class FunctionClock(Clock):
    """Time read from a bare function, with real waits.

    What a loop makes of the older ``clock=`` argument: a test that only
    dates things with a hand-moved function keeps working, and its waits
    stay real.
    """

    def __init__(self, read: Callable[[], float]) -> None:
        self.read = read

    def now(self) -> float:
        return self.read()


#: The clock of production code.
MONOTONIC = Clock()


def as_clock(clock: Clock | Callable[[], float]) -> Clock:
    """``clock`` itself when it is a :class:`Clock`, else paired with waits."""
    if isinstance(clock, Clock):
        return clock
    if clock is time.monotonic:
        return MONOTONIC
    return FunctionClock(clock)


def poll(predicate: Callable[[], T], timeout: float, interval: float,
         clock: Clock = MONOTONIC) -> T | None:
    """``predicate()`` once it returns something true; None after timeout.

    The predicate is always called at least once, and once more at the
    deadline; between calls the clock waits ``interval`` (less near the
    deadline).
    """
    deadline = clock.now() + timeout
    pause = threading.Event()
    while True:
        found = predicate()
        if found:
            return found
        left = deadline - clock.now()
        if left <= 0:
            return None
        clock.wait(pause, min(interval, left))
