"""Where the workload belongs, from the peers the broker sees (pure).

The workload belongs on the host with the highest score among the hosts
that are up on the observer's own clock and not in local maintenance; ties
go to the lowest host_id.  Two hosts that both believe they win race for
the lease, and the lease settles it (the loser's busy lease is normal).
A host that runs the workload yields only through :class:`MigrationGate`:
to a peer better by ``migrate_threshold`` for ``migrate_after`` loops in a
row, so that one bad reading never moves the workload.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from heartbeat.agent import states
from heartbeat.broker.status import AGENT_STALE
from heartbeat.broker.status import BrokerStatus
from heartbeat.broker.status import MAINTENANCE_LOCAL


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One host as the election sees it."""

    host_id: int
    member_id: str
    score: int
    #: Up on the observer's clock (a member not yet judged is not up).
    up: bool
    #: In local maintenance.
    maintenance: bool
    runs_workload: bool
    #: This host itself.
    is_self: bool = False


def _runs(state: str | None, payload: dict[str, Any]) -> bool:
    agent = payload.get('agent') if isinstance(payload, dict) else None
    flag = isinstance(agent, dict) and agent.get('workload_running') is True
    return flag or states.runs_workload(state)


def candidates(status: BrokerStatus) -> list[Candidate]:
    """Every host with a host_id among the broker's peers, by host_id.

    A peer runs the workload if its posted state is a running state or its
    agent says so in the payload (global maintenance keeps it running).
    A peer whose broker says its agent went silent (``agent_stale``) is
    left out.
    If the broker does not list this host among its peers, it is built
    from the broker's own posted state (and counts as up).
    """
    out: list[Candidate] = []
    for peer in status.peers.members:
        if peer.host_id is None:
            continue
        if not peer.is_self and peer.payload.get(AGENT_STALE) is True:
            # Its agent stopped posting: neither its score nor its claim
            # to run the workload is current.  If the workload still runs
            # there, the lease says so (busy) when we try.
            continue
        out.append(Candidate(
            host_id=peer.host_id, member_id=peer.member_id,
            score=max(0, peer.score or 0), up=peer.up is True,
            maintenance=peer.maintenance == MAINTENANCE_LOCAL,
            runs_workload=_runs(peer.state, peer.payload),
            is_self=peer.is_self))
    if not any(c.is_self for c in out) and status.host.host_id is not None:
        own = status.own
        out.append(Candidate(
            host_id=status.host.host_id,
            member_id=own.member_id or status.host.member_id,
            score=max(0, own.score or 0), up=True,
            maintenance=own.local_maintenance or status.maintenance.local,
            runs_workload=_runs(own.state, own.payload), is_self=True))
    return sorted(out, key=lambda c: c.host_id)


def best(cands: list[Candidate]) -> Candidate | None:
    """The highest score among up, non-maintenance hosts scoring > 0.

    Ties go to the lowest host_id; None when no host may run the workload.
    """
    eligible = [c for c in cands if c.up and not c.maintenance and c.score > 0]
    if not eligible:
        return None
    return min(eligible, key=lambda c: (-c.score, c.host_id))


def runner(cands: list[Candidate]) -> Candidate | None:
    """An up host that runs the workload (the lowest host_id if several)."""
    running = [c for c in cands if c.up and c.runs_workload]
    return min(running, key=lambda c: c.host_id) if running else None


def host_name(host_id: int) -> str:
    """How reasons name a host."""
    return 'host-%d' % host_id


@dataclasses.dataclass
class MigrationGate:
    """Counts the loops in a row a peer beats this host by the threshold."""

    count: int = 0

    def reset(self) -> None:
        self.count = 0

    def check(self, own_score: int, best_peer: Candidate | None,
              threshold: int, after: int) -> tuple[bool, str]:
        """Feed one loop; True (and why) once the peer won ``after`` loops.

        A loop where the peer is missing or not better by ``threshold``
        starts the count again.  Firing resets the count as well.
        """
        if best_peer is None:
            self.count = 0
            return False, 'no peer may take the workload'
        needed = own_score + threshold
        text = 'peer %s score %d %s %d + %d' % (
            host_name(best_peer.host_id), best_peer.score,
            '>=' if best_peer.score >= needed else '<', own_score, threshold)
        if best_peer.score < needed:
            self.count = 0
            return False, text
        self.count += 1
        if self.count < after:
            return False, '%s (%d of %d loops)' % (text, self.count, after)
        loops, self.count = self.count, 0
        plural = '' if loops == 1 else 's'
        return True, '%s for %d loop%s' % (text, loops, plural)
