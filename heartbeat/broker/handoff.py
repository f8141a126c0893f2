"""A one-place hand-off between threads: only the newest value survives.

The producer (an RPC thread) never waits: :meth:`LatestOnly.put` replaces
whatever the consumer has not taken yet.  The consumer (the writer thread)
waits on the shared Condition for a value or a deadline.  Several cells may
share one Condition so that the consumer waits for any of them.
"""

from __future__ import annotations

import collections
import threading
from typing import Generic
from typing import TypeVar

T = TypeVar('T')


class LatestOnly(Generic[T]):
    """A deque of size one plus a Condition."""

    def __init__(self, condition: threading.Condition | None = None) -> None:
        self.condition = condition or threading.Condition()
        self._cell: collections.deque[T] = collections.deque(maxlen=1)
        #: Values replaced before the consumer took them.
        self.superseded = 0

    def put(self, value: T) -> None:
        """Offer ``value``, dropping an untaken older one; never waits."""
        with self.condition:
            if self._cell:
                self.superseded += 1
            self._cell.append(value)
            self.condition.notify_all()

    def take_nowait(self) -> T | None:
        """The newest value, or None; call with or without the lock."""
        with self.condition:
            return self._cell.popleft() if self._cell else None

    def peek(self) -> T | None:
        """The value waiting to be taken, left in place (None if none)."""
        with self.condition:
            return self._cell[0] if self._cell else None

    @property
    def pending(self) -> bool:
        return bool(self._cell)
