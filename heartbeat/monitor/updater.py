"""Turn reads into events: the diff between what was known and what is read.

The updater is pure: it owns no thread, no clock and no I/O.  The caller
passes the observer-clock time of every read and of every deadline check,
so tests drive it with a fake clock.  Transitions of one member:

* first sight (not left)             -> MemberJoined (status not judged yet)
* its report changed                 -> MemberUp (once, until it goes down)
* no change within service_down_time -> MemberDown (see :meth:`expire`)
* a new incarnation (a restart, even
  with a lower seq), or a rejoin     -> MemberJoined, then MemberUp
* the member left cleanly            -> MemberLeft(clean=True)
* its record disappeared             -> MemberLeft(clean=False)
* its state changed                  -> MemberStateChanged(old, new)

A record that turns unreadable keeps its member: nothing changes at once,
and the member goes down at its deadline with the reason in the event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heartbeat import liveness
from heartbeat.model import Event
from heartbeat.model import MemberDown
from heartbeat.model import MemberJoined
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.model import MemberUp
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.repository import Entry
from heartbeat.monitor.repository import Repository

#: Statuses whose member may still go down (a deadline is pending).
_WATCHED = (Status.UNKNOWN, Status.UP)


class Updater:
    """Applies reads to a :class:`Repository` and returns the events."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @property
    def down_time(self) -> float:
        return self.repository.down_time

    def apply(self, snapshot: Snapshot, now: float, wall: float,
              group: str | None = None) -> list[Event]:
        """Fold a read of ``group`` (None: every group) made at ``now``.

        Does not judge deadlines; call :meth:`expire` after it (with the
        time the read started, so that a slow read never makes a member
        look down).
        """
        repo = self.repository
        events: list[Event] = []
        seen = set()
        for report in snapshot.reports:
            entry, before = repo.fold(report, now, wall)
            seen.add((report.group, report.member_id))
            if before is not report:
                self._transition(entry, before, now, wall, events)
        for key in repo.absent(snapshot, group, seen):
            gone = repo.remove(key)
            if gone is not None and gone.announced not in (None,
                                                           Status.LEFT):
                events.append(MemberLeft(clean=False,
                                         **_common(gone.report, now, wall)))
        return events

    def _transition(self, entry: Entry, before: Report | None, now: float,
                    wall: float, events: list[Event]) -> None:
        report = entry.report
        common = _common(report, now, wall)
        status = liveness.judge(entry.observation, now, self.down_time)
        fresh = (before is None or before.incarnation != report.incarnation
                 or (entry.announced is Status.LEFT and not report.left))
        if fresh and not report.left:
            events.append(MemberJoined(**common))
            entry.announced = Status.UNKNOWN
        if status is Status.LEFT:
            if entry.announced not in (None, Status.LEFT):
                events.append(MemberLeft(clean=True, **common))
            entry.announced = Status.LEFT
            return
        if status is Status.UP and entry.announced is not Status.UP:
            events.append(MemberUp(**common))
            entry.announced = Status.UP
        if before is not None and before.state != report.state:
            events.append(MemberStateChanged(old_state=before.state,
                                             new_state=report.state,
                                             **common))

    def expire(self, now: float, wall: float,
               groups: Iterable[str | None] = (None,)) -> list[Event]:
        """MemberDown for every member of ``groups`` whose deadline passed."""
        events: list[Event] = []
        down_time = self.down_time
        for entry in self._entries(groups):
            if entry.announced not in _WATCHED:
                continue
            obs = entry.observation
            if now - obs.last_change < down_time:
                continue   # the common case, without a call
            if liveness.judge(obs, now, down_time) is Status.DOWN:
                entry.announced = Status.DOWN
                events.append(MemberDown(
                    reason=self._down_reason(entry, now),
                    **_common(entry.report, now, wall)))
        return events

    def next_deadline(self, groups: Iterable[str | None] = (None,)
                      ) -> float | None:
        """Earliest observer time at which a member of ``groups`` goes down.

        That is, unless its report changes first.
        """
        best: float | None = None
        for entry in self._entries(groups):
            if entry.announced in _WATCHED:
                at = liveness.deadline(entry.observation, self.down_time)
                if best is None or at < best:
                    best = at
        return best

    def picture(self, group: str | None, now: float,
                wall: float) -> list[Event]:
        """Replay events describing the current state of ``group``.

        A MemberJoined per known member, then its MemberUp or MemberDown.
        """
        events: list[Event] = []
        for key in sorted(self.repository.keys(group)):
            entry = self.repository.entry(key)
            if entry is None or entry.announced in (None, Status.LEFT):
                continue
            common = _common(entry.report, now, wall)
            events.append(MemberJoined(replay=True, **common))
            if entry.announced is Status.UP:
                events.append(MemberUp(replay=True, **common))
            elif entry.announced is Status.DOWN:
                events.append(MemberDown(
                    replay=True, reason=self._down_reason(entry, now),
                    **common))
        return events

    def _entries(self, groups: Iterable[str | None]) -> Iterable[Entry]:
        repo = self.repository
        for group in groups:
            if group is None:
                names: Iterable[str] = repo.groups()
            else:
                names = (group,)
            for name in names:
                yield from list(repo.entries(name).values())

    def _down_reason(self, entry: Entry, now: float) -> str:
        age = now - entry.observation.last_change
        if entry.invalid_reason is not None:
            return ('record unreadable (%s); no valid change for %.1fs'
                    % (entry.invalid_reason, age))
        return ('no new report for %.1fs (service_down_time %.1fs)'
                % (age, self.down_time))


def _common(report: Report, now: float, wall: float) -> dict[str, Any]:
    return {'group': report.group, 'member_id': report.member_id,
            'report': report, 'observed_at': now, 'observed_wall': wall}
