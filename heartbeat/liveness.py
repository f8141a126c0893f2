"""Pure liveness decisions, on the observer's own monotonic clock.

A member is alive while the token of its report (incarnation, seq) keeps
changing.  The observer notes, on its own monotonic clock, when it last saw
the token change; the writer's wall clock is never compared with ours, so a
member whose clock is hours off is judged exactly like any other.  This is
how sanlock delta leases and hosted-engine judge their peers.

A fresh observer has not yet seen any change: it reports such a member as
UNKNOWN (counted as alive, no false alarm) until it sees a change (UP) or
service_down_time passes without one (DOWN).

A backend that orders beats on one clock of its own (the redis server)
tells the age of members' newest beats instead (see
:class:`~heartbeat.model.Beats`); :func:`judge_told` judges those.  One
clock judges every member there too: the server's, never the writers'.
"""

from __future__ import annotations

import dataclasses

from heartbeat.model import Report
from heartbeat.model import Status


@dataclasses.dataclass(frozen=True)
class Observation:
    """What an observer remembers of one member's record."""

    token: tuple[int, int]
    #: Observer-clock time this observer first saw the member.
    first_seen: float
    #: Observer-clock time the token last changed (first sight counts).
    last_change: float
    #: Whether a change was seen after first sight.
    changed: bool
    left: bool


def observe(prev: Observation | None, report: Report,
            now: float) -> Observation:
    """Fold one read of ``report`` at observer time ``now`` into ``prev``."""
    if prev is None:
        return Observation(token=report.token, first_seen=now,
                           last_change=now, changed=False, left=report.left)
    if report.token != prev.token:
        return Observation(token=report.token, first_seen=prev.first_seen,
                           last_change=now, changed=True, left=report.left)
    if report.left != prev.left:
        return dataclasses.replace(prev, left=report.left)
    return prev


def judge(obs: Observation, now: float, down_time: float) -> Status:
    """Status of a member at observer time ``now``."""
    if obs.left:
        return Status.LEFT
    if now - obs.last_change >= down_time:
        return Status.DOWN
    return Status.UP if obs.changed else Status.UNKNOWN


def deadline(obs: Observation, down_time: float) -> float:
    """Observer-clock time at which the member turns DOWN without a change."""
    return obs.last_change + down_time


def judge_told(stale: bool, left: bool, vouched: float, now: float,
               down_time: float) -> Status:
    """Status at ``now`` of a member whose liveness the backend tells.

    ``stale``: the last read that told of the member found its newest
    beat older than ``down_time`` on the backend's clock; ``vouched``:
    observer time of the newest read of its group, which would have told
    it stale.  A group not read for ``down_time`` has all its members
    DOWN: nothing vouches for them any more.
    """
    if left:
        return Status.LEFT
    if stale or now - vouched >= down_time:
        return Status.DOWN
    return Status.UP
