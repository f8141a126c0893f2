"""In-memory knowledge of members, fed by snapshots.

The repository holds, per group and member, the last report and the
liveness observation.  It does no I/O: callers hand it snapshots together
with the observer-clock time of the read.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import time

from heartbeat import liveness
from heartbeat.model import Member
from heartbeat.model import Report
from heartbeat.model import Snapshot


@dataclasses.dataclass
class Entry:
    """What is known of one member."""

    report: Report
    observation: liveness.Observation
    #: Wall time (display only) of the observer when the token last changed.
    last_change_wall: float
    invalid_reason: str | None = None


class Repository:
    """Members of every group an observer reads."""

    def __init__(self, down_time: float) -> None:
        self.down_time = down_time
        self._groups: dict[str, dict[str, Entry]] = {}

    def groups(self) -> list[str]:
        return sorted(self._groups)

    def entries(self, group: str) -> dict[str, Entry]:
        return self._groups.get(group, {})

    def apply(self, snapshot: Snapshot, now: float,
              group: str | None = None) -> tuple[set[tuple[str, str]],
                                                 set[tuple[str, str]]]:
        """Fold a snapshot read at observer time ``now`` into the repository.

        ``group`` names the group the snapshot covers (None: every group).
        Returns ``(seen, vanished)``: the (group, member_id) keys present in
        the snapshot, and those known before but absent from it now.
        """
        seen: set[tuple[str, str]] = set()
        by_location: dict[str, tuple[str, str]] = {}
        for report in snapshot.reports:
            key = (report.group, report.member_id)
            seen.add(key)
            members = self._groups.setdefault(report.group, {})
            entry = members.get(report.member_id)
            if entry is None:
                members[report.member_id] = Entry(
                    report=report,
                    observation=liveness.observe(None, report, now),
                    last_change_wall=time.time())
            else:
                obs = liveness.observe(entry.observation, report, now)
                if obs.last_change != entry.observation.last_change:
                    entry.last_change_wall = time.time()
                entry.observation = obs
                entry.report = report
                entry.invalid_reason = None
            if report.location:
                by_location[report.location] = key
        # A record that turned unreadable keeps its member: the last good
        # observation stands (and ages towards DOWN), with the reason noted.
        invalid_at = {rec.location: rec.reason for rec in snapshot.invalid}
        for key in self._keys(group):
            if key in seen:
                continue
            entry = self._groups[key[0]][key[1]]
            reason = invalid_at.get(entry.report.location)
            if reason is not None and entry.report.location not in by_location:
                entry.invalid_reason = reason
                seen.add(key)
        vanished = {key for key in self._keys(group) if key not in seen}
        for grp, member_id in vanished:
            del self._groups[grp][member_id]
            if not self._groups[grp]:
                del self._groups[grp]
        return seen, vanished

    def _keys(self, group: str | None) -> Iterator[tuple[str, str]]:
        groups = [group] if group is not None else list(self._groups)
        for grp in groups:
            for member_id in list(self._groups.get(grp, {})):
                yield grp, member_id

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
