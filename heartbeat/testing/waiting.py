"""Waiting for a condition in tests, with a message when it never comes.

::

    wait_for(lambda: store.writer_view().stalled, timeout=5,
             message='the writer never reported the stall')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from heartbeat import clock

T = TypeVar('T')

#: Seconds between two calls of the predicate by default.
INTERVAL = 0.05


def wait_for(predicate: Callable[[], T], timeout: float = 10.0,
             interval: float = INTERVAL, message: str | None = None) -> T:
    """Call ``predicate`` until it returns something true; return that.

    Raises AssertionError after ``timeout`` seconds (on the monotonic
    clock), saying ``message`` (by default: the condition was not met)
    and what the predicate returned last.  The predicate is always called
    at least once, and once more at the deadline.
    """
    seen: list[T] = []

    def tracked() -> T:
        seen[:] = [predicate()]
        return seen[0]

    found = clock.poll(tracked, timeout, interval)
    if found:
        return found
    raise AssertionError('%s within %.1fs (last: %r)'
                         % (message or 'condition not met', timeout,
                            seen[0] if seen else None))
