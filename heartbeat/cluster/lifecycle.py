"""Things that start and stop: simulated daemons, mounts, test servers.

A fixture starts on ``with`` and stops when the block ends; one that can
stall its service on demand also offers ``paused()``.  The simulated hosts
(:mod:`heartbeat.cluster`) and the test servers of :mod:`heartbeat.testing`
share these two bases.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from types import TracebackType
from typing import TypeVar

F = TypeVar('F', bound='Fixture')


class Fixture:
    """Started by ``with``; stopped when the block ends, even on errors."""

    def start(self) -> None:
        """Start the fixture (already started ones may do nothing)."""

    def stop(self) -> None:
        """Stop the fixture and release what it holds; safe to repeat."""

    def __enter__(self: F) -> F:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class Pausable(Fixture):
    """A fixture whose service can be made to hang, then resume."""

    def pause(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hang the service for the duration of the block."""
        self.pause()
        try:
            yield
        finally:
            self.resume()
