"""A model of one host's broker and of the shared place brokers post to.

:class:`Board` is the shared storage of the posts: every host's records,
with the true time each was written, and the cluster-wide maintenance
flag.  :class:`SimBroker` is one incarnation of a host's broker: it keeps
what the agent posted, writes its record every ``report_interval`` (and
at once after a post) while its host reaches the storage, reads the
peers every ``peer_refresh_interval`` and judges them on its OWN host's
monotonic clock, exactly as the real observer does: a peer is up while
its record changed within ``service_down_time``, unknown before the
first change, down after.  A read sees each peer's record as it was
``delay`` seconds earlier (the message delay); a partition or a lost
storage makes reads miss.  :meth:`SimBroker.status` builds the typed
:class:`~heartbeat.broker.status.BrokerStatus` the real agent reads.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
import dataclasses
from typing import Any
from typing import TYPE_CHECKING

from heartbeat.broker import status as st
from heartbeat.testing.simulator.clock import Timer

if TYPE_CHECKING:
    from heartbeat.testing.simulator.cluster import Cluster
    from heartbeat.testing.simulator.host import SimHost

#: Seconds of records the board keeps, for reads that lag behind.
HISTORY_S = 600.0


@dataclasses.dataclass(frozen=True)
class Record:
    """One host's post as written on the board."""

    host_id: int
    incarnation: int
    seq: int
    state: str | None
    score: int | None
    payload: dict[str, Any]
    maintenance: str

    @property
    def token(self) -> tuple[int, int]:
        return self.incarnation, self.seq


class Board:
    """What every broker writes to and reads from (true times)."""

    def __init__(self) -> None:
        self.history: dict[int, collections.deque[tuple[float, Record]]] = {}
        self.global_mode: str | None = None

    def write(self, now: float, record: Record) -> None:
        rows = self.history.setdefault(record.host_id, collections.deque())
        rows.append((now, record))
        while len(rows) > 1 and rows[1][0] <= now - HISTORY_S:
            rows.popleft()

    def visible(self, host_id: int, cutoff: float) -> Record | None:
        """The newest record of ``host_id`` written at or before cutoff."""
        for written, record in reversed(self.history.get(host_id, ())):
            if written <= cutoff:
                return record
        return None


@dataclasses.dataclass
class PeerView:
    """What an observer remembers of one peer (observer-clock times)."""

    record: Record
    last_change: float
    changed: bool = False


class SimBroker:
    """One incarnation of a host's broker; see the module docstring."""

    def __init__(self, world: Cluster, host: SimHost,
                 incarnation: int) -> None:
        self.world = world
        self.host = host
        self.incarnation = incarnation
        self.alive = True
        self.started = host.clock.monotonic()
        self.started_true = world.clock.now()
        self.seq = 0
        self.own_state: str | None = None
        self.own_score: int | None = None
        self.own_payload: dict[str, Any] = {}
        self.version = 0
        self.posted_at = self.started
        self.peers: dict[int, PeerView] = {}
        self.first_read: float | None = None
        self.domain = st.DOMAIN_NEVER_STARTED
        self.global_mode: str | None = None
        self._timers: dict[str, Timer] = {}

    # -- lifecycle -----------------------------------------------------

    def start(self) -> None:
        """Write, read, and keep doing both on the configured periods."""
        sim = self.world.settings
        if sim.join_on_start:
            self.world.authority.join(self.host.id)
        self._every('write', sim.report_interval, self.write)
        self._every('read', sim.refresh_interval, self.read)

    def stop(self) -> None:
        """The process is gone: nothing it does runs any more."""
        self.alive = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _every(self, name: str, period: float,
               action: Callable[[], None]) -> None:
        span = self.host.clock.true_span(period)

        def tick() -> None:
            if self.alive:
                action()
                self._timers[name] = self.world.clock.call_later(span, tick)

        tick()

    # -- what the agent calls ------------------------------------------

    def put_state(self, state: str, score: int,
                  payload: dict[str, Any]) -> None:
        self.own_state, self.own_score = state, score
        self.own_payload = payload
        self.version += 1
        self.posted_at = self.host.clock.monotonic()
        self.write()

    def start_domain_monitor(self) -> None:
        self.domain = st.DOMAIN_RUNNING

    def stop_domain_monitor(self) -> None:
        self.domain = st.DOMAIN_STOPPED

    # -- storage I/O -----------------------------------------------------

    def write(self) -> None:
        if not self.alive or not self.host.storage_ok:
            return
        self.seq += 1
        self.world.board.write(self.world.clock.now(), Record(
            host_id=self.host.id, incarnation=self.incarnation,
            seq=self.seq, state=self.own_state, score=self.own_score,
            payload=self._published_payload(),
            maintenance=(st.MAINTENANCE_LOCAL if self.host.local_maintenance
                         else st.MAINTENANCE_NONE)))

    def _published_payload(self) -> dict[str, Any]:
        """The payload as the real writer publishes it (stale flag too)."""
        if st.agent_stale(self.own_payload, self.posted_at,
                          self.host.clock.monotonic()):
            return {**self.own_payload, st.AGENT_STALE: True}
        return self.own_payload

    def read(self) -> None:
        if not self.alive or not self.host.storage_ok:
            return
        world = self.world
        now = self.host.clock.monotonic()
        if self.first_read is None:
            self.first_read = now
        self.global_mode = world.board.global_mode
        for other in world.host_ids():
            if other == self.host.id or not world.can_see(self.host.id,
                                                          other):
                continue
            record = world.board.visible(
                other, world.clock.now() - world.delay())
            if record is not None:
                self._fold(record, now)

    def _fold(self, record: Record, now: float) -> None:
        prev = self.peers.get(record.host_id)
        if prev is None:
            self.peers[record.host_id] = PeerView(record, now)
            return
        old = prev.record
        newer = (record.incarnation != old.incarnation
                 or record.seq > old.seq)
        if record.token != old.token and newer:
            self.peers[record.host_id] = PeerView(record, now, True)

    # -- the status ------------------------------------------------------

    def status(self) -> st.BrokerStatus:
        """The typed status, as the real broker answers ``get_status``."""
        world = self.world
        sim = world.settings
        host = self.host
        now = host.clock.monotonic()
        lost = host.storage_lost_for()
        invalid = lost >= sim.domain_probe_timeout
        running = self.domain == st.DOMAIN_RUNNING
        member = 'host-%d' % host.id
        return st.BrokerStatus(
            host=st.HostInfo(host_id=host.id, host=member, member_id=member,
                             uptime_s=now - self.started),
            own=st.OwnState(member_id=member, state=self.own_state,
                            score=self.own_score, payload=self.own_payload,
                            posted_age_s=now - self.posted_at,
                            version=self.version,
                            local_maintenance=host.local_maintenance),
            writer=st.WriterHealth(
                connected=True, healthy=lost == 0.0,
                stalled=lost >= sim.storage_stall_after, stale_s=lost),
            peers=st.Peers(observed_s=(None if self.first_read is None
                                       else now - self.first_read),
                           members=self._members(now)),
            domain=st.DomainStatus(monitor=self.domain, validated=running,
                                   valid=not (running and invalid)),
            submonitors=self._readings(running and invalid),
            fencing=self._fencing(),
            maintenance=st.MaintenanceStatus(
                local=host.local_maintenance, global_mode=self.global_mode),
            options=st.OptionsInUse(
                report_interval=sim.report_interval,
                service_down_time=sim.agent.service_down_time,
                peer_refresh_interval=sim.refresh_interval))

    def _fencing(self) -> st.FencingStatus:
        lockspace, error = self.world.authority.lockspace(self.host.id)
        holders, pending = self._holders()
        return st.FencingStatus(
            fencer='sanlock', safe=True, host_id=self.host.id,
            lockspace=st.LockspaceStatus(state=lockspace, error=error),
            lease=st.LeaseStatus(
                held=bool(holders),
                holders=[st.LeaseHolder(pid=pid) for pid in holders],
                pending=[st.LeaseHolder(pid=pid) for pid in pending]))

    def _holders(self) -> tuple[list[int], list[int]]:
        """The live holders this broker knows, and the pending ones.

        Pending: recorded before a restart, not confirmed by sanlock yet.
        """
        world = self.world
        confirmed = world.clock.now() >= (self.started_true
                                          + world.settings.holder_recovery)
        live = [rec for rec in world.authority.records
                if rec.host == self.host.id and not rec.gone
                and self.host.process_running(rec.pid)]
        held = [rec.pid for rec in live
                if confirmed or rec.acquired >= self.started_true]
        return held, [rec.pid for rec in live if rec.pid not in held]

    def _members(self, now: float) -> list[st.Peer]:
        down_time = self.world.settings.agent.service_down_time
        member = 'host-%d' % self.host.id
        out = [st.Peer(
            member_id=member, is_self=True, up=True, status='up',
            state=self.own_state, score=self.own_score, seq=self.seq,
            payload=self.own_payload, host_id=self.host.id,
            maintenance=(st.MAINTENANCE_LOCAL if self.host.local_maintenance
                         else st.MAINTENANCE_NONE))]
        for host_id in sorted(self.peers):
            view = self.peers[host_id]
            age = now - view.last_change
            if age >= down_time:
                up, text = False, 'down'
            elif view.changed:
                up, text = True, 'up'
            else:
                up, text = None, 'unknown'
            rec = view.record
            out.append(st.Peer(
                member_id='host-%d' % host_id, up=up, status=text,
                state=rec.state, score=rec.score, seq=rec.seq,
                last_change_age_s=age, payload=rec.payload,
                host_id=host_id, maintenance=rec.maintenance))
        return out

    def _readings(self, invalid: bool) -> dict[str, st.SubmonitorReading]:
        host = self.host
        return {
            'network': st.SubmonitorReading(value=host.reachable),
            'cpu_load': st.SubmonitorReading(value=0.1),
            'free_memory': st.SubmonitorReading(value=8192),
            'storage_domain': st.SubmonitorReading(
                value=not invalid, ok=not invalid,
                detail='storage lost' if invalid else ''),
        }
