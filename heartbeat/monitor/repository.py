"""In-memory knowledge of members, fed by snapshots.

The repository holds, per group and member, the last report and the
liveness observation.  It does no I/O: callers hand it snapshots together
with the observer-clock time of the read.  It judges nothing by itself
either; :class:`~heartbeat.monitor.updater.Updater` turns what changes here
into events, and :meth:`Repository.members` judges on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import dataclasses
import time

from heartbeat import liveness
from heartbeat.model import Member
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status

Key = tuple[str, str]


@dataclasses.dataclass(slots=True)
class Entry:
    """What is known of one member."""

    report: Report
    observation: liveness.Observation
    #: Wall time (display only) of the observer when the token last changed.
    last_change_wall: float
    invalid_reason: str | None = None
    #: The status last announced to subscribers (None: nothing yet).
    announced: Status | None = None


class Repository:
    """Members of every group an observer reads."""

    def __init__(self, down_time: float,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.down_time = down_time
        self.wall_clock = wall_clock
        self._groups: dict[str, dict[str, Entry]] = {}

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def entries(self, group: str) -> dict[str, Entry]:
        return self._groups.get(group, {})

    def entry(self, key: Key) -> Entry | None:
        return self._groups.get(key[0], {}).get(key[1])

    def __len__(self) -> int:
        return sum(len(members) for members in self._groups.values())

    # -- folding reads -----------------------------------------------------

    def fold(self, report: Report, now: float,
             wall: float) -> tuple[Entry, Report | None]:
        """Fold one report read at ``now``.

        Returns the member's entry and the report it replaces (None for a
        member not known before).
        """
        members = self._groups.setdefault(report.group, {})
        entry = members.get(report.member_id)
        if entry is None:
            entry = Entry(report=report,
                          observation=liveness.observe(None, report, now),
                          last_change_wall=wall)
            members[report.member_id] = entry
            return entry, None
        before = entry.report
        if report is before:
            # Drivers that cache decoded records hand back the very same
            # object for a record that did not change: nothing to fold.
            entry.invalid_reason = None
            return entry, before
        obs = liveness.observe(entry.observation, report, now)
        if obs.last_change != entry.observation.last_change:
            entry.last_change_wall = wall
        entry.observation = obs
        entry.report = report
        entry.invalid_reason = None
        return entry, before

    def absent(self, snapshot: Snapshot, group: str | None,
               seen: set[Key]) -> list[Key]:
        """Keys the snapshot says are gone; note unreadable records.

        In a complete snapshot a known member that is absent is gone,
        unless its record turned unreadable: then the member stays, its
        last good observation ageing towards DOWN, with the reason noted.
        An incremental snapshot names what is gone in ``gone``.
        """
        if not snapshot.invalid and not snapshot.gone and (
                not snapshot.complete or len(seen) == self._count(group)):
            return []   # the common case: everyone known was read
        invalid_at = {rec.location: rec.reason for rec in snapshot.invalid}
        located = ({report.location for report in snapshot.reports
                    if report.location} if invalid_at else set())
        gone = set(snapshot.gone)
        out = []
        for key in self._keys(group):
            if key in seen:
                continue
            entry = self._groups[key[0]][key[1]]
            location = entry.report.location
            reason = invalid_at.get(location) if location else None
            if reason is not None and location not in located:
                entry.invalid_reason = reason
                continue
            if snapshot.complete or key in gone:
                out.append(key)
        return out

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
        return entry

    def forget(self, group: str | None) -> None:
        """Drop every member of ``group`` (None: of every group)."""
        if group is None:
            self._groups.clear()
        else:
            self._groups.pop(group, None)

    def apply(self, snapshot: Snapshot, now: float,
              group: str | None = None) -> tuple[set[Key], set[Key]]:
        """Fold a snapshot read at observer time ``now`` into the repository.

        ``group`` names the group the snapshot covers (None: every group).
        Returns ``(seen, vanished)``: the (group, member_id) keys present in
        the snapshot, and those known before but gone now (removed).
        """
        wall = self.wall_clock()
        seen: set[Key] = set()
        for report in snapshot.reports:
            self.fold(report, now, wall)
            seen.add((report.group, report.member_id))
        vanished = set(self.absent(snapshot, group, seen))
        for key in vanished:
            self.remove(key)
        if snapshot.complete:
            # Members kept for an unreadable record count as seen.
            seen = set(self._keys(group))
        return seen, vanished

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
        obs = entry.observation
        return Member(
            member_id=entry.report.member_id,
            group=entry.report.group,
            status=liveness.judge(obs, now, self.down_time),
            report=entry.report,
            last_change=obs.last_change,
            last_change_age=max(0.0, now - obs.last_change),
            last_change_wall=entry.last_change_wall,
            invalid_reason=entry.invalid_reason)
