"""Which of the broker's RPC connections to keep, and for how long.

Pure bookkeeping, without sockets or sleeps: :class:`ConnectionLimits` are
the ``[broker]`` connection options, and :class:`ConnectionTable` decides,
on the time it is given, which connection a new one evicts and when a slow
or idle one is cut.  The RPC server (:mod:`heartbeat.broker.server`) acts
on its answers.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """How many connections the server keeps, and for how long.

    ``reserved`` of the ``max_connections`` are kept free for new callers
    (at most ``max_connections - 1`` are).  ``read_timeout`` bounds the time
    from connecting, or from the first byte of a request, to the request's
    last byte, and the time a client may take to read its answer.
    ``idle_timeout`` bounds the time between two requests.
    """

    max_connections: int = 64
    reserved: int = 8
    read_timeout: float = 2.0
    idle_timeout: float = 60.0

    @classmethod
    def from_options(cls, group: Any) -> ConnectionLimits:
        """The limits in a ``[broker]`` option group."""
        return cls(max_connections=group.max_connections,
                   reserved=group.reserved_connections,
                   read_timeout=group.client_read_timeout,
                   idle_timeout=group.client_idle_timeout)

    @property
    def soft_limit(self) -> int:
        """Open connections above which each new one closes the stalest."""
        return self.max_connections - min(self.reserved,
                                          self.max_connections - 1)


@dataclasses.dataclass
class _Entry:
    progress: float
    owner: Hashable = None
    frame_started: float | None = None
    in_call: bool = False
    served: int = 0


class ConnectionTable:
    """Which connections to keep, which to close: pure bookkeeping.

    Connections are keyed by any hashable (the server uses the socket);
    every method takes the current monotonic time, so the rules are tested
    without sockets or sleeps.  A connection's staleness is the time since
    its last whole request (or since it connected): a client that sends one
    byte at a time, or nothing, never makes progress, while a working
    caller does on every call.  Connections in a call are never chosen.

    Each connection may have an owner (the server uses the peer's pid): the
    owner holding the most connections gives up its stalest first, so that
    one process that opens connections as fast as they are closed evicts
    its own, not those of a caller that has yet to send its request.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._owned: collections.Counter[Hashable] = collections.Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def admit(self, key: Hashable, now: float, limits: ConnectionLimits,
              owner: Hashable = None) -> list[Hashable] | None:
        """Add ``key``; the connections to close for it, or None if full.

        None means every connection is in a call and the table is at
        ``max_connections``: refuse the new one.
        """
        victims: list[Hashable] = []
        while len(self._entries) >= limits.soft_limit:
            victim = self._stalest()
            if victim is None:
                break
            self.discard(victim)
            victims.append(victim)
        if len(self._entries) >= limits.max_connections:
            return None
        self._entries[key] = _Entry(progress=now, owner=owner)
        self._owned[owner] += 1
        return victims

    def _stalest(self) -> Hashable | None:
        owned = self._owned
        candidates = [(-owned[entry.owner], entry.progress, key)
                      for key, entry in self._entries.items()
                      if not entry.in_call]
        if not candidates:
            return None
        return min(candidates, key=lambda item: item[:2])[2]

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (closed, or evicted already)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._owned[entry.owner] -= 1
            if not self._owned[entry.owner]:
                del self._owned[entry.owner]

    def received(self, key: Hashable, now: float, requests: int,
                 pending: int) -> None:
        """``requests`` whole requests arrived; ``pending`` bytes wait."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if requests:
            entry.progress = now
            entry.served += requests
            entry.frame_started = None
        if pending and entry.frame_started is None:
            entry.frame_started = now
        elif not pending:
            entry.frame_started = None

    def set_in_call(self, key: Hashable, in_call: bool, now: float) -> None:
        """Mark ``key`` as running a call (never closed meanwhile)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.in_call = in_call
            if not in_call:
                entry.progress = now

    def remaining(self, key: Hashable, now: float,
                  limits: ConnectionLimits) -> float:
        """Seconds ``key`` may still wait for its next bytes (<= 0: close).

        Until its first whole request, and while a request is incomplete,
        the read timeout applies; between requests, the idle timeout.
        """
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        if entry.frame_started is not None:
            return entry.frame_started + limits.read_timeout - now
        if not entry.served:
            return entry.progress + limits.read_timeout - now
        return entry.progress + limits.idle_timeout - now
