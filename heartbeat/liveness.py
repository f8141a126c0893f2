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

from heartbeat.model import Report
from heartbeat.model import Status


def changed(before: Report, report: Report) -> bool:
    """Whether ``report`` shows its member alive since ``before`` was read.

    Its (incarnation, seq) token changed: a new beat, or a restart, even
    with a lower seq.
    """
    return (report.seq != before.seq
            or report.incarnation != before.incarnation)


def judge(left: bool, last_change: float, seen_change: bool, now: float,
          down_time: float) -> Status:
    """Status at observer time ``now`` of a member judged by its changes.

    ``last_change``: observer time its token last changed (first sight
    counts); ``seen_change``: whether a change was seen after first sight.
    """
    if left:
        return Status.LEFT
    if now - last_change >= down_time:
        return Status.DOWN
    return Status.UP if seen_change else Status.UNKNOWN


def deadline(last_change: float, down_time: float) -> float:
    """Observer-clock time at which the member turns DOWN without a change."""
    return last_change + down_time


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
