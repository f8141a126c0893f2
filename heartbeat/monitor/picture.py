"""The picture a new subscriber starts from, described as it is taken.

A subscriber first learns the current state of what it watches: a
MemberJoined per member, then its MemberUp or MemberDown, all with
``replay=True``.  Describing a group of 100,000 members at once would
queue 200,000 events before the first is delivered, and hold them all.  A
:class:`Picture` holds only the member ids, in order, and describes a few
members at a time, from what the monitor knows at that moment, as the
subscriber's queue asks for more (:class:`~heartbeat.monitor.eventqueue.
EventQueue`).  A change of a member not yet described needs no event: its
description, later, shows it.  A Down or a Left does not wait behind the
rest: the member is described at once, ahead of the others.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from heartbeat.model import Event

Key = tuple[str, str]
#: The replay events of the given members as they are now (none for a
#: member that is gone or not yet announced).
Describe = Callable[[list[Key]], list[Event]]


class Picture:
    """Member ids of one or more groups, described on demand, in order.

    ``lock`` orders a description with the changes the monitor dispatches:
    it is held around every call of ``describe``.  Not thread-safe by
    itself: its queue calls it with that lock and its own held.
    """

    def __init__(self, groups: list[tuple[str, list[str]]],
                 describe: Describe,
                 lock: AbstractContextManager[Any]) -> None:
        #: (group, its member ids sorted), groups in order.
        self._groups = [(group, ids) for group, ids in groups if ids]
        self._where = {group: i for i, (group, _) in enumerate(self._groups)}
        self._segment = 0
        self._pos = 0
        #: Members described ahead of their turn.
        self._early: set[Key] = set()
        self._describe = describe
        self.lock = lock
        #: Members not described yet.
        self.remaining = sum(len(ids) for _, ids in self._groups)

    @property
    def done(self) -> bool:
        return self._segment >= len(self._groups)

    def pending(self, key: Key) -> bool:
        """Whether ``key`` is in the picture and not described yet."""
        i = self._where.get(key[0])
        if i is None or i < self._segment:
            return False
        ids = self._groups[i][1]
        j = bisect.bisect_left(ids, key[1],
                               self._pos if i == self._segment else 0)
        return (j < len(ids) and ids[j] == key[1]
                and key not in self._early)

    def now(self, key: Key) -> list[Event]:
        """Describe pending ``key`` at once, ahead of its turn."""
        self._early.add(key)
        self.remaining -= 1
        return self._describe([key])

    def next(self, count: int) -> list[Event]:
        """Describe the next ``count`` members (fewer at the end)."""
        keys: list[Key] = []
        while len(keys) < count and not self.done:
            group, ids = self._groups[self._segment]
            key = (group, ids[self._pos])
            self._pos += 1
            if self._pos == len(ids):
                # Described: its ids are not needed any more.
                self._groups[self._segment] = (group, [])
                self._segment += 1
                self._pos = 0
            if key in self._early:
                self._early.discard(key)
                continue
            keys.append(key)
        self.remaining -= len(keys)
        return self._describe(keys)
