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
* its record disappeared while down  -> MemberLeft(clean=False)
* its record disappeared while alive -> nothing yet: an outage of the
  backend (lost data, expired session), not a leave; the member is up
  again at its next report, or at its deadline MemberDown then
  MemberLeft(clean=False)
* its state changed                  -> MemberStateChanged(old, new)

A record that turns unreadable keeps its member: nothing changes at once,
and the member goes down at its deadline with the reason in the event.

Cost: :meth:`Updater.apply` is O(reports) for an incremental read (a plain
beat of a live member is one comparison) and O(members) only for a
complete one; :meth:`Updater.expire` and :meth:`Updater.next_deadline`
cost O(log members) per member due (see
:mod:`~heartbeat.monitor.deadlines`), not O(members).
"""

from __future__ import annotations

from collections.abc import Iterable
import math
import typing
from typing import Any

from heartbeat.model import Event
from heartbeat.model import MemberDown
from heartbeat.model import MemberJoined
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.model import MemberUp
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.deadlines import Deadlines
from heartbeat.monitor.deadlines import key as deadlines_key
from heartbeat.monitor.deadlines import QueuedEntry
from heartbeat.monitor.deadlines import Sooner
from heartbeat.monitor import repository as repository_mod
from heartbeat.monitor.repository import Key
from heartbeat.monitor.repository import Repository

#: Statuses whose member may still go down (a deadline is pending).
_WATCHED = (Status.UNKNOWN, Status.UP)


class Entry(QueuedEntry):
    """An entry of a watched repository: what the updater announced."""

    __slots__ = ('announced',)

    def __init__(self, report: Report, last_change: float) -> None:
        super().__init__(report, last_change)
        #: The status last announced to subscribers (None: nothing yet).
        self.announced: Status | None = None


def _watched(entry: repository_mod.Entry) -> Entry:
    """An entry of the updater's repository, which makes only Entry."""
    return typing.cast('Entry', entry)


class Updater:
    """Applies reads to a :class:`Repository` and returns the events."""

    def __init__(self, repository: Repository) -> None:
        if repository.entry_type is not Entry:
            if len(repository):
                raise ValueError('an Updater needs a repository of its own, '
                                 'empty when it starts watching')
            repository.entry_type = Entry
        self.repository = repository
        self.deadlines: Deadlines[Entry] = Deadlines()
        #: Deadlines a change brought forward (phi_threshold only).
        self.sooner: Sooner[Entry] = Sooner()
        self._phi = repository.phi_threshold is not None
        #: (from, until) of the grace after a blind spell (see grant_grace).
        self.grace: tuple[float, float] | None = None
        #: Told groups whose members went down for want of a read.
        self._unread: set[str] = set()

    def grant_grace(self, since: float, until: float) -> None:
        """No member goes down between ``since`` and ``until``.

        Called when the observer reads the backend again after a spell it
        could not see it (failed or very slow reads): a member whose
        deadline falls in the grace is judged as at ``since`` until
        ``until``, which leaves it time for its next report to be read.
        A member already down at ``since`` stays down, and one that does
        not report by ``until`` goes down then.
        """
        self.grace = (since, until)

    def judge_time(self, now: float) -> float:
        """The time deadlines are judged at, ``now`` or the grace's start."""
        grace = self.grace
        if grace is None:
            return now
        since, until = grace
        if now >= until:
            self.grace = None
            return now
        return min(now, since) if now >= since else now

    @property
    def down_time(self) -> float:
        return self.repository.down_time

    def apply(self, snapshot: Snapshot, now: float, wall: float,
              group: str | None = None, quiet: bool = False) -> list[Event]:
        """Fold a read of ``group`` (None: every group) made at ``now``.

        Does not judge deadlines; call :meth:`expire` after it (with the
        time the read started, so that a slow read never makes a member
        look down).  ``quiet``: the events are told to no one (the first
        read of a group nobody watches yet), so none is kept: what is
        announced is noted all the same.
        """
        repo = self.repository
        # A vanished record is kept while its member is judged alive, so
        # through a grace too.
        folded = repo.read(snapshot, now, group, self.judge_time(now), wall)
        up = Status.UP
        phi = self._phi
        events: list[Event] = _Untold() if quiet else []
        # Two lists, not one of pairs (see Folded).
        changed: list[Entry] = []
        changed_befores: list[Report | None] = []
        for folded_entry, before in zip(folded.entries, folded.befores,
                                        strict=True):
            entry = _watched(folded_entry)
            if phi and entry.scheduled is not None:
                self._bring_forward(entry)
            report = entry.report
            if (before is not None and entry.announced is up
                    and before.incarnation == report.incarnation
                    and before.state == report.state and not report.left):
                continue   # a plain beat of a live member: no event
            changed.append(entry)
            changed_befores.append(before)
        # Ages were folded with the reports, so that a member first seen
        # stale never looks up.
        for entry, before in zip(changed, changed_befores, strict=True):
            self._transition(entry, before, now, wall, events)
        for told in folded.told:
            self._told(_watched(told), now, wall, events)
        if snapshot.beats is not None:
            for told_group in snapshot.beats.ages:
                self._vouched_again(told_group, now, wall, events)
        for key in folded.absent:
            absent = repo.entry(key)
            if absent is None:
                continue
            gone = _watched(absent)
            if gone.vanished and gone.announced in _WATCHED:
                self._down(gone, now, wall, events)   # its deadline passed
                continue
            repo.remove(key)
            if gone.announced not in (None, Status.LEFT):
                events.append(MemberLeft(clean=False,
                                         **_common(gone.report, now, wall)))
        return events

    def _transition(self, entry: Entry, before: Report | None, now: float,
                    wall: float, events: list[Event]) -> None:
        report = entry.report
        common = _common(report, now, wall)
        status = self.repository.status(entry, now)
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
        if entry.announced in _WATCHED and self.repository.vouched(
                report.group) is None:
            self._queue(entry)

    def _told(self, entry: Entry, now: float, wall: float,
              events: list[Event]) -> None:
        """Events of a member whose liveness a read told (not its report)."""
        announced = entry.announced
        if announced is None or announced is Status.LEFT:
            return
        status = self.repository.status(entry, now)
        if status is Status.DOWN and announced in _WATCHED:
            self._down(entry, now, wall, events)
        elif status is Status.UP and announced is not Status.UP:
            events.append(MemberUp(**_common(entry.report, now, wall)))
            entry.announced = Status.UP

    def _vouched_again(self, group: str, now: float, wall: float,
                       events: list[Event]) -> None:
        """A group that went down unread is read again: judge it whole."""
        if group not in self._unread:
            return
        self._unread.discard(group)
        for entry in self._entries(group):
            if entry.announced is Status.DOWN:
                self._told(entry, now, wall, events)

    def _expire_unread(self, group: str, now: float, wall: float,
                       events: list[Event]) -> None:
        """All members of a told group go down when it is not read.

        Nothing vouches for them after service_down_time without a read.
        """
        vouched = self.repository.vouched(group)
        if (vouched is None or group in self._unread
                or now - vouched < self.down_time):
            return
        self._unread.add(group)
        for entry in self._entries(group):
            if entry.announced in _WATCHED:
                self._down(entry, now, wall, events,
                           reason='group not read for %.1fs (service_'
                                  'down_time %.1fs)' % (now - vouched,
                                                        self.down_time))

    def _key(self, entry: Entry) -> float:
        """The entry's key in the deadline queues.

        Its deadline less service_down_time: its last change, unless
        phi_threshold makes it go down sooner (so that keys order the
        deadlines).
        """
        return entry.last_change + (self.repository.down_after(entry)
                                    - self.down_time)

    def _bring_forward(self, entry: Entry) -> None:
        """Keep a deadline that a change brought before its queue place."""
        due = self._key(entry)
        if entry.scheduled is None or due < entry.scheduled:
            self.sooner.push(entry.report.group, entry, due)

    def _sooner_first(self, group: str) -> float | None:
        """Key of the first deadline brought forward in ``group``.

        Only one that still stands: stale ones are dropped, or brought
        forward again.
        """
        sooner = self.sooner
        while (first := sooner.first(group)) is not None:
            at, entry = first
            if self._current(entry) and self._key(entry) == at:
                return at
            sooner.pop(group)
            if self._current(entry):
                self._bring_forward(entry)
        return None

    def _expire_sooner(self, group: str, now: float, wall: float,
                       events: list[Event]) -> None:
        while ((at := self._sooner_first(group)) is not None
               and now - at >= self.down_time):
            first = self.sooner.first(group)
            assert first is not None
            self.sooner.pop(group)
            if self.repository.status(first[1], now) is Status.DOWN:
                self._down(first[1], now, wall, events)

    def _queue(self, entry: Entry) -> None:
        """Queue the deadline of a member that may go down (once)."""
        if entry.scheduled is None:
            self.deadlines.push(entry.report.group, entry, self._key(entry))

    def _current(self, entry: Entry) -> bool:
        """Whether a queued entry still stands for a member that may go down.

        Not when the member is gone (or known again under a new entry) or
        is down or left already.
        """
        report = entry.report
        return (entry.announced in _WATCHED and self.repository.entries(
            report.group).get(report.member_id) is entry)

    def expire(self, now: float, wall: float,
               groups: Iterable[str | None] = (None,),
               quiet: bool = False) -> list[Event]:
        """MemberDown for every member of ``groups`` whose deadline passed.

        ``quiet`` as for :meth:`apply`.
        """
        now = self.judge_time(now)
        events: list[Event] = _Untold() if quiet else []
        down_time = self.down_time
        deadlines = self.deadlines
        for group in self._deadline_groups(groups):
            # Due: the comparison liveness.judge makes for DOWN.
            while ((first := deadlines.first(group)) is not None
                   and now - deadlines_key(first) >= down_time):
                if not self._current(first):
                    deadlines.pop(group)
                elif now - (due := self._key(first)) < down_time:
                    # It beat since it was queued: not due yet.
                    deadlines.requeue_first(group, due)
                else:
                    deadlines.pop(group)
                    if self.repository.status(first,
                                              now) is Status.DOWN:
                        self._down(first, now, wall, events)
        for group in _chosen(self.sooner.groups(), groups):
            self._expire_sooner(group, now, wall, events)
        for group in self._told_groups(groups):
            self._expire_unread(group, now, wall, events)
        return events

    def _entries(self, group: str) -> list[Entry]:
        """The entries of ``group``, as a list (events may remove some)."""
        return [_watched(e) for e in self.repository.entries(group).values()]

    def _told_groups(self, groups: Iterable[str | None]) -> list[str]:
        return _chosen(self.repository.told_groups(), groups)

    def _down(self, entry: Entry, now: float, wall: float,
              events: list[Event], reason: str | None = None) -> None:
        entry.announced = Status.DOWN
        common = _common(entry.report, now, wall)
        events.append(MemberDown(
            reason=reason or self._down_reason(entry, now), **common))
        if entry.vanished:
            # Its record did not come back: it is gone after all.
            report = entry.report
            self.repository.remove((report.group, report.member_id))
            events.append(MemberLeft(clean=False, **common))

    def next_deadline(self, groups: Iterable[str | None] = (None,),
                      horizon: float = math.inf) -> float | None:
        """Earliest observer time at which a member of ``groups`` goes down.

        That is, unless its report changes first.  The answer is exact when
        it is earlier than ``horizon``; otherwise it is some time no
        earlier than ``horizon`` (or None), which saves re-queueing
        members that beat since they were queued until their deadline
        gets near.
        """
        best: float | None = None
        down_time = self.down_time
        deadlines = self.deadlines
        for group in self._deadline_groups(groups):
            while (first := deadlines.first(group)) is not None:
                queued = deadlines_key(first)
                if queued + down_time >= horizon:
                    break
                if not self._current(first):
                    deadlines.pop(group)
                elif (due := self._key(first)) == queued:
                    break   # exact: the member did not change since
                else:
                    deadlines.requeue_first(group, due)
            if first is not None:
                at = deadlines_key(first) + down_time
                if best is None or at < best:
                    best = at
        for group in _chosen(self.sooner.groups(), groups):
            sooner = self._sooner_first(group)
            if sooner is not None and (best is None
                                       or sooner + down_time < best):
                best = sooner + down_time
        for group in self._told_groups(groups):
            vouched = self.repository.vouched(group)
            if vouched is not None and group not in self._unread:
                at = vouched + down_time
                if best is None or at < best:
                    best = at
        grace = self.grace
        if best is not None and grace is not None and (
                grace[0] <= best < grace[1]):
            # Judged again when the grace ends, not while it lasts.
            best = grace[1]
        return best

    def forget(self, group: str | None) -> None:
        """Forget every member of ``group`` (None: of every group)."""
        self.repository.forget(group)
        self.deadlines.forget(group)
        self.sooner.forget(group)
        if group is None:
            self._unread.clear()
        else:
            self._unread.discard(group)

    def _deadline_groups(self, groups: Iterable[str | None]) -> list[str]:
        return _chosen(self.deadlines.groups(), groups)

    def picture_ids(self, group: str | None) -> list[tuple[str, list[str]]]:
        """The member ids, sorted, per group of the picture of ``group``."""
        repo = self.repository
        return [(grp, sorted(repo.entries(grp)))
                for grp in (repo.groups() if group is None else [group])]

    def describe(self, keys: Iterable[Key], now: float,
                 wall: float) -> list[Event]:
        """Replay events describing the members of ``keys`` as they are.

        A MemberJoined per member announced and not left, then its
        MemberUp or MemberDown.
        """
        events: list[Event] = []
        for key in keys:
            known = self.repository.entry(key)
            entry = None if known is None else _watched(known)
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

    def _down_reason(self, entry: Entry, now: float) -> str:
        age = now - entry.last_change
        if entry.vanished:
            return ('record vanished from the backend (data lost, session '
                    'expired or deleted) and no new report for %.1fs'
                    % age)
        invalid = self.repository.invalid_reason(entry)
        if invalid is not None:
            return ('record unreadable (%s); no valid change for %.1fs'
                    % (invalid, age))
        if self.repository.vouched(entry.report.group) is not None:
            return ('no beat for %.1fs by the backend\'s clock '
                    '(service_down_time %.1fs)' % (age, self.down_time))
        threshold = self.repository.phi_threshold
        if threshold is not None and age < self.down_time:
            return ('no new report for %.1fs: suspicion reached '
                    'phi_threshold %g (its reports came every %.2fs on '
                    'average; service_down_time %.1fs)'
                    % (age, threshold, entry.rhythm[0], self.down_time))
        return ('no new report for %.1fs (service_down_time %.1fs)'
                % (age, self.down_time))


class _Untold(list[Event]):
    """The events of a quiet read: told to no one, so none is kept."""

    def append(self, event: Event) -> None:
        pass


def _chosen(known: list[str], groups: Iterable[str | None]) -> list[str]:
    """The groups of ``known`` that ``groups`` asks for (None: all of them).

    Those asked for by name come sorted, so that events come in one order.
    """
    names = set(groups)
    if None in names:
        return known
    return sorted(group for group in known if group in names)


def _common(report: Report, now: float, wall: float) -> dict[str, Any]:
    return {'group': report.group, 'member_id': report.member_id,
            'report': report, 'observed_at': now, 'observed_wall': wall}
