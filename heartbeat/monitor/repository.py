"""In-memory knowledge of members, fed by snapshots.

The repository holds, per group and member, the last report and the
liveness observation.  It does no I/O: callers hand it snapshots together
with the observer-clock time of the read.  It judges nothing by itself
either; :class:`~heartbeat.monitor.updater.Updater` turns what changes here
into events, and :meth:`Repository.members` judges on demand.

A record that vanishes while its member is still judged alive (a
backend that lost its data on a restart, a ZooKeeper session that expired,
a slot wiped by hand) is an outage of the backend, not a leave: the member
is kept with its last observation, marked ``vanished``, and ageing towards
DOWN.  Its next report (the member rewrites its record at its next beat)
makes it current again without any event; only a member that is DOWN, or
stays away until its deadline, is dropped.

Cost: folding a report is O(1).  An incremental snapshot (``complete`` is
False) costs O(reports + gone) to fold: members it does not list are not
looked at.  Only a complete snapshot is compared with every known member,
because there a member's absence is what says it is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
import dataclasses
import sys
import time
import typing

from heartbeat import liveness
from heartbeat.model import Beats
from heartbeat.model import Member
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat import suspicion

Key = tuple[str, str]


#: The bits of Entry.flags (the folds below set them directly).
CHANGED = 1
VANISHED = 2
STALE = 4


class _Flag:
    """A bool kept as one bit of an entry's flags (see Entry)."""

    __slots__ = ('bit',)

    def __init__(self, bit: int) -> None:
        self.bit = bit

    @typing.overload
    def __get__(self, entry: None, owner: type[Entry]) -> _Flag:
        ...

    @typing.overload
    def __get__(self, entry: Entry, owner: type[Entry]) -> bool:
        ...

    def __get__(self, entry: Entry | None,
                owner: type[Entry]) -> bool | _Flag:
        if entry is None:
            return self
        return bool(entry.flags & self.bit)

    def __set__(self, entry: Entry, value: bool) -> None:
        if value:
            entry.flags |= self.bit
        else:
            entry.flags &= ~self.bit


class Entry:
    """What is known of one member.

    Kept flat and small, one object of four fields per member (an
    observer holds one per member it watches): the token and the left
    flag are those of ``report``, the wall time of the last change is
    derived from the observer's clocks when asked (display only), the
    reason a record is unreadable is kept by the repository (few members
    have one), and three bools share one int.  Only what the repository
    owns: the owner of a watched repository adds its own fields in a
    subclass (see ``Repository.entry_type``).
    """

    __slots__ = ('flags', 'last_change', 'report', 'rhythm')

    #: Whether the token changed after first sight.
    changed = _Flag(CHANGED)
    #: Its record vanished while it was judged alive; kept until its
    #: deadline (see the module docstring).
    vanished = _Flag(VANISHED)
    #: Told by the backend (:class:`~heartbeat.model.Beats`): its newest
    #: beat was older than service_down_time at the last read telling it.
    stale = _Flag(STALE)

    def __init__(self, report: Report, last_change: float) -> None:
        self.report = report
        #: Observer-clock time the token last changed (first sight
        #: counts), or of the newest beat the backend told of.
        self.last_change = last_change
        self.flags = 0
        #: The member's rhythm, for its suspicion
        #: (:mod:`heartbeat.suspicion`).
        self.rhythm: suspicion.Rhythm = suspicion.NO_RHYTHM

    def status(self, now: float, down_time: float) -> Status:
        return liveness.judge(self.report.left, self.last_change,
                              self.changed, now, down_time)


@dataclasses.dataclass
class Folded:
    """What one read brought to the repository (see Repository.read)."""

    #: The entry of each member whose report the read brought anew...
    entries: list[Entry]
    #: ...and its report before, in the same order (None: a member new to
    #: the repository).  Two lists, not a list of pairs: a first read of
    #: 100,000 members would make as many short-lived tuples.
    befores: list[Report | None]
    #: Entries whose liveness the backend told (Snapshot.beats).
    told: list[Entry]
    #: Keys of members the read says are gone; still in the repository.
    absent: list[Key]


class Repository:
    """Members of every group an observer reads."""

    def __init__(self, down_time: float,
                 wall_clock: Callable[[], float] = time.time,
                 phi_threshold: float | None = None) -> None:
        self.down_time = down_time
        self.wall_clock = wall_clock
        self.phi_threshold = phi_threshold
        #: What fold() makes for a member seen first: Entry, or the
        #: subclass of the owner that watches the repository (the
        #: monitor's updater, which adds what it announced and queued).
        self.entry_type: type[Entry] = Entry
        #: Deviations past the mean interval at which phi reaches the
        #: threshold (None: down by service_down_time alone).
        self._phi_y = (None if phi_threshold is None
                       else suspicion.deviations(phi_threshold))
        self._groups: dict[str, dict[str, Entry]] = {}
        #: Wall clock minus observer clock at the newest fold: the wall
        #: time of a change is its observer time plus this (display only).
        self._wall_offset = 0.0
        #: Groups whose liveness the backend tells, and the observer time
        #: of their newest read (see :meth:`fold_beats`).
        self._vouched: dict[str, float] = {}
        # location -> key, built the first time an incremental snapshot
        # names an unreadable record, then kept up to date by fold().
        self._by_location: dict[str, Key] | None = None
        #: Why the record of an entry is unreadable, for the few that are.
        self._invalid: dict[Entry, str] = {}

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def entries(self, group: str) -> dict[str, Entry]:
        return self._groups.get(group, {})

    def entry(self, key: Key) -> Entry | None:
        return self._groups.get(key[0], {}).get(key[1])

    def __len__(self) -> int:
        return sum(len(members) for members in self._groups.values())

    def invalid_reason(self, entry: Entry) -> str | None:
        """Why the record of ``entry`` is unreadable (None: it is not)."""
        return self._invalid.get(entry) if self._invalid else None

    def vouched(self, group: str) -> float | None:
        """Observer time of the newest read telling ``group``'s liveness.

        None for a group whose liveness the observer judges itself.
        """
        return self._vouched.get(group)

    def told_groups(self) -> list[str]:
        """Groups whose liveness the backend tells."""
        return list(self._vouched)

    def down_after(self, entry: Entry) -> float:
        """Silence after which the member of ``entry`` is DOWN.

        service_down_time, or sooner with ``phi_threshold`` where the
        member's rhythm makes its silence that suspicious sooner; fixed
        between two changes of the member.
        """
        if self._phi_y is None:
            return self.down_time
        return suspicion.down_after(entry.rhythm, self.down_time,
                                    self._phi_y)

    def status(self, entry: Entry, now: float) -> Status:
        """What the observer concludes of ``entry`` at ``now``."""
        vouched = self._vouched.get(entry.report.group)
        if vouched is None:
            return entry.status(now, self.down_after(entry))
        return liveness.judge_told(entry.stale, entry.report.left, vouched,
                                   now, self.down_time)

    def fold_beats(self, beats: Beats, now: float,
                   wall: float) -> list[Entry]:
        """Fold the ages of newest beats a backend told at ``now``.

        Returns the entries told of.  Members it does not name are not
        looked at: they are as the previous read told.
        """
        told: list[Entry] = []
        down_time = self.down_time
        self._wall_offset = wall - now
        # Members told the same age share the float of their last change.
        lasts: dict[float, float] = {}
        for group, ages in beats.ages.items():
            members = self._groups.get(group)
            self._vouched[sys.intern(group)] = now
            if not members:
                continue
            for member_id, age in ages.items():
                entry = members.get(member_id)
                if entry is None:
                    continue
                last = lasts.get(age)
                if last is None:
                    last = lasts[age] = now - age
                entry.last_change = last
                entry.flags = (entry.flags | CHANGED | STALE
                               if age >= down_time
                               else (entry.flags | CHANGED) & ~STALE)
                told.append(entry)
        return told

    # -- folding reads -----------------------------------------------------

    def fold(self, report: Report, now: float,
             wall: float) -> tuple[Entry, Report | None]:
        """Fold one report read at ``now``.

        Returns the member's entry and the report it replaces (None for a
        member not known before).  The member changed when
        :func:`liveness.changed` says so.
        """
        self._wall_offset = wall - now
        members = self._groups.get(report.group)
        if members is None:
            # One string per group name however many reports carry it.
            members = self._groups[sys.intern(report.group)] = {}
        entry = members.get(report.member_id)
        if entry is None:
            entry = members[report.member_id] = self.entry_type(report, now)
            if self._by_location is not None:
                self._relocate('', report)
            return entry, None
        before = entry.report
        if self._invalid:
            self._invalid.pop(entry, None)
        if entry.flags & VANISHED:
            entry.flags &= ~VANISHED
        if report is before:
            # Drivers that cache decoded records hand back the very same
            # object for a record that did not change: nothing to fold.
            return entry, before
        if liveness.changed(before, report):
            if entry.flags & CHANGED:
                entry.rhythm = suspicion.add(entry.rhythm,
                                             now - entry.last_change)
            entry.last_change = now
            entry.flags |= CHANGED
        entry.report = report
        if (self._by_location is not None
                and report.location != before.location):
            self._relocate(before.location, report)
        return entry, before

    def _relocate(self, old: str, report: Report) -> None:
        index = self._by_location
        assert index is not None
        key = (report.group, report.member_id)
        if index.get(old) == key:
            del index[old]
        if report.location:
            index[report.location] = key

    def absent(self, snapshot: Snapshot, group: str | None, now: float,
               seen: set[Key] | None = None) -> list[Key]:
        """Keys the snapshot says are gone; note unreadable records.

        In a complete snapshot a known member that is absent is gone,
        unless its record turned unreadable: then the member stays, its
        last good observation ageing towards DOWN, with the reason noted.
        An incremental snapshot names what is gone in ``gone``; nothing
        else is looked at: the backend named those (a purge after its
        time to live), so they are gone.  A member absent from a complete
        snapshot while still judged alive at ``now`` is kept as
        ``vanished`` rather than returned.
        ``seen`` holds the keys of the snapshot's reports (computed here
        when needed and not given).
        """
        if snapshot.complete:
            return [key for key in self._absent_complete(snapshot, group,
                                                         seen)
                    if not self._keep_vanished(key, now)]
        if not snapshot.invalid and not snapshot.gone:
            return []   # the common case of an incremental read
        if seen is None:
            seen = _keys_of(snapshot.reports)
        kept = self._note_invalid_incremental(snapshot, group, seen)
        return [key for key in dict.fromkeys(snapshot.gone)
                if (group is None or key[0] == group) and key not in seen
                and key not in kept and self.entry(key) is not None]

    def _keep_vanished(self, key: Key, now: float) -> bool:
        """Keep a member whose record vanished while it was alive."""
        entry = self._groups[key[0]][key[1]]
        if self.status(entry, now) not in (Status.UP, Status.UNKNOWN):
            return False
        entry.vanished = True
        return True

    def _absent_complete(self, snapshot: Snapshot, group: str | None,
                         seen: set[Key] | None) -> list[Key]:
        if not snapshot.invalid and group is not None and seen is None:
            # The common case, without a tuple per member: everyone known
            # was read.
            ids = {report.member_id for report in snapshot.reports
                   if report.group == group}
            if len(ids) == self._count(group):
                return []
        if seen is None:
            seen = _keys_of(snapshot.reports)
        if not snapshot.invalid and len(seen) == self._count(group):
            return []   # the common case: everyone known was read
        invalid_of = {rec.key: rec.reason for rec in snapshot.invalid
                      if rec.key is not None}
        invalid_at = {rec.location: rec.reason for rec in snapshot.invalid
                      if rec.key is None}
        located = ({report.location for report in snapshot.reports
                    if report.location} if invalid_at else set())
        out = []
        for key in self._keys(group):
            if key in seen:
                continue
            entry = self._groups[key[0]][key[1]]
            reason = invalid_of.get(key)
            location = entry.report.location
            if (reason is None and location and location not in located):
                reason = invalid_at.get(location)
            if reason is not None:
                self._invalid[entry] = reason
                continue
            out.append(key)
        return out

    def _note_invalid_incremental(self, snapshot: Snapshot,
                                  group: str | None,
                                  seen: set[Key]) -> set[Key]:
        """Mark members whose record the snapshot found unreadable.

        Returns their keys.  A record is the member's it names, or where
        it names none the one's at its location, unless that location was
        read fine in the same snapshot: then it belongs to that report (a
        record taken over by another member).
        """
        if not snapshot.invalid:
            return set()
        located = {report.location for report in snapshot.reports
                   if report.location}
        kept = set()
        for rec in snapshot.invalid:
            key = rec.key
            if key is None:
                # Only its location says whose it was.
                key = self._location_index().get(rec.location)
                if key is None or rec.location in located:
                    continue
            if key in seen or (group is not None and key[0] != group):
                continue
            entry = self.entry(key)
            if entry is not None:
                self._invalid[entry] = rec.reason
                kept.add(key)
        return kept

    def _location_index(self) -> dict[str, Key]:
        if self._by_location is None:
            # Paid once, on the first unreadable record of an incremental
            # read; fold() and remove() keep it current from then on.
            self._by_location = {
                entry.report.location: (grp, mid)
                for grp, members in self._groups.items()
                for mid, entry in members.items() if entry.report.location}
        return self._by_location

    def _count(self, group: str | None) -> int:
        if group is None:
            return len(self)
        return len(self._groups.get(group, ()))

    def remove(self, key: Key) -> Entry | None:
        members = self._groups.get(key[0])
        if members is None:
            return None
        entry = members.pop(key[1], None)
        if not members:
            del self._groups[key[0]]
        if entry is not None and self._invalid:
            self._invalid.pop(entry, None)
        if entry is not None and self._by_location is not None:
            location = entry.report.location
            if self._by_location.get(location) == key:
                del self._by_location[location]
        return entry

    def forget(self, group: str | None) -> None:
        """Drop every member of ``group`` (None: of every group)."""
        if group is None:
            self._groups.clear()
            self._vouched.clear()
            self._invalid.clear()
        else:
            self._groups.pop(group, None)
            self._vouched.pop(group, None)
            self._invalid = {entry: reason for entry, reason
                             in self._invalid.items()
                             if entry.report.group != group}
        # Rebuilt on demand.
        self._by_location = None

    def read(self, snapshot: Snapshot, now: float, group: str | None,
             judged_at: float | None = None,
             wall: float | None = None) -> Folded:
        """Fold a snapshot read at observer time ``now``: the one path.

        Every read an observer makes goes through here, watched (the
        monitor's :class:`~heartbeat.monitor.updater.Updater`, which turns
        the result into events) or not (:meth:`apply`).  ``group`` names
        the group the snapshot covers (None: every group); ``judged_at``
        is the time whether a vanished member is still alive is judged at
        (default ``now``); ``wall`` the wall time of the read (default the
        repository's wall clock).  The members the snapshot says are gone
        are returned, not removed: what that means is the caller's.
        """
        if wall is None:
            wall = self.wall_clock()
        fold = self.fold
        entries = []
        befores = []
        for report in snapshot.reports:
            entry, before = fold(report, now, wall)
            if before is not report:
                entries.append(entry)
                befores.append(before)
        told = ([] if snapshot.beats is None
                else self.fold_beats(snapshot.beats, now, wall))
        absent = self.absent(snapshot, group,
                             now if judged_at is None else judged_at)
        return Folded(entries, befores, told, absent)

    def apply(self, snapshot: Snapshot, now: float,
              group: str | None = None) -> tuple[set[Key], set[Key]]:
        """Fold a read nobody watches: :meth:`read`, the gone removed.

        Returns ``(seen, vanished)``: the (group, member_id) keys present in
        the snapshot, and those known before but gone now (removed; a
        member still alive whose record vanished is kept, see
        :meth:`absent`).
        """
        vanished = set(self.read(snapshot, now, group).absent)
        for key in vanished:
            self.remove(key)
        if snapshot.complete:
            # Members kept for an unreadable record count as seen.
            return set(self._keys(group)), vanished
        return _keys_of(snapshot.reports), vanished

    def _keys(self, group: str | None) -> Iterator[Key]:
        groups = [group] if group is not None else list(self._groups)
        for grp in groups:
            for member_id in list(self._groups.get(grp, {})):
                yield grp, member_id

    def keys(self, group: str | None = None) -> list[Key]:
        return list(self._keys(group))

    # -- answers -----------------------------------------------------------

    def member(self, group: str, member_id: str, now: float) -> Member | None:
        entry = self._groups.get(group, {}).get(member_id)
        if entry is None:
            return None
        return self._member(entry, now)

    def members(self, group: str | None, now: float) -> list[Member]:
        return [self._member(self._groups[grp][mid], now)
                for grp, mid in sorted(self._keys(group))]

    def _member(self, entry: Entry, now: float) -> Member:
        age = max(0.0, now - entry.last_change)
        told = entry.report.group in self._vouched
        return Member(
            member_id=entry.report.member_id,
            group=entry.report.group,
            status=self.status(entry, now),
            report=entry.report,
            last_change=entry.last_change,
            last_change_age=age,
            last_change_wall=entry.last_change + self._wall_offset,
            invalid_reason=self.invalid_reason(entry),
            # An observer told of liveness sees no rhythm of beats.
            suspicion=None if told else suspicion.phi(entry.rhythm, age))


def _keys_of(reports: Iterable[Report]) -> set[Key]:
    return {(report.group, report.member_id) for report in reports}
