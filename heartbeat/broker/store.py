"""The broker's in-memory status, answered at once from any thread.

:class:`StatusStore` holds what the host posted, what the writer thread last
managed to do with the storage (and how long ago), the peers it read, the
submonitor readings and the global maintenance flag.  Nothing here does I/O:
RPC threads read it while the writer thread, which may be stuck on a stalled
storage, updates it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import threading
import time
from typing import Any

from heartbeat.broker.handoff import LatestOnly
from heartbeat.broker import status
from heartbeat.model import Member
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.repository import Repository


@dataclasses.dataclass(frozen=True)
class PostedState:
    """What the host (its agent) last posted."""

    state: str | None
    score: int | None
    payload: Mapping[str, Any]
    #: Broker monotonic time of the post.
    posted_at: float
    #: Increments on every post.
    version: int
    local_maintenance: bool = False


@dataclasses.dataclass
class IoHealth:
    """How the writer thread fares with the storage."""

    connected: bool = False
    last_write: float | None = None
    last_read: float | None = None
    #: (operation, monotonic start) of the storage operation in progress.
    busy: tuple[str, float] | None = None
    last_error: str | None = None
    writes: int = 0
    reads: int = 0
    failures: int = 0
    written_version: int = 0
    written_seq: int = 0
    #: Whether the newest storage write failed (cleared by the next one
    #: that succeeds): reads alone do not make a writer healthy.
    write_failing: bool = False


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(max(0.0, now - then), 3)


def _host_id(payload: Mapping[str, Any]) -> int | None:
    value = payload.get('host_id')
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def peer_of(m: Member, own_member_id: str) -> status.Peer:
    """The typed view of one observed member."""
    known = m.status is not Status.UNKNOWN
    payload = dict(m.report.payload)
    maintenance = payload.get('maintenance')
    return status.Peer(
        member_id=m.member_id,
        group=m.group,
        is_self=m.member_id == own_member_id,
        up=(m.status is Status.UP) if known else None,
        status=m.status.value,
        state=m.report.state,
        score=m.report.score,
        seq=m.report.seq,
        last_change_age_s=round(m.last_change_age, 3),
        location=m.report.location,
        invalid_reason=m.invalid_reason,
        payload=payload,
        host_id=_host_id(payload),
        maintenance=(maintenance if isinstance(maintenance, str)
                     else status.MAINTENANCE_NONE),
    )


@dataclasses.dataclass(frozen=True)
class StoreView:
    """One consistent reading of the store."""

    own: status.OwnState
    writer: status.WriterHealth
    peers: status.Peers
    #: The cluster-wide maintenance mode last read back (None: unknown).
    global_maintenance: str | None
    #: A global mode requested and not written yet (queued or retried).
    global_pending: str | None = None
    #: Why the newest global write failed (None once one succeeds).
    global_error: str | None = None


class StatusStore:
    """Thread-safe status of one broker; see the module docstring."""

    def __init__(self, group: str, member_id: str, down_time: float,
                 stall_after: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.group = group
        self.member_id = member_id
        self.clock = clock
        self.stall_after = stall_after
        self.lock = threading.Lock()
        self.started_at = clock()
        self.io = IoHealth()
        self.repository = Repository(down_time)
        self.global_maintenance: str | None = None
        #: Broker time of the first peers read (None before).
        self.first_read_at: float | None = None
        self.posted = PostedState(None, None, {}, clock(), 0)
        self.condition = threading.Condition()
        #: Newest posted state not yet taken by the writer.
        self.to_write: LatestOnly[PostedState] = LatestOnly(self.condition)
        #: Newest global maintenance mode not yet written (a cluster flag).
        self.to_write_global: LatestOnly[str] = LatestOnly(self.condition)
        #: The global mode taken by the writer and not written yet (being
        #: written, or failed and waiting for its retry).
        self.global_retrying: str | None = None
        self.global_error: str | None = None

    # -- producers (RPC threads) -------------------------------------------

    def put_state(self, state: str | None, score: int | None,
                  payload: Mapping[str, Any]) -> PostedState:
        """Record the state and hand it to the writer; never waits.

        The hand-off happens under the same lock as the version bump, so
        of two concurrent posts the one with the higher version is always
        the one left for the writer.
        """
        with self.lock:
            old = self.posted
            self.posted = PostedState(state, score, dict(payload),
                                      self.clock(), old.version + 1,
                                      old.local_maintenance)
            # Lock order: self.lock, then the hand-off's condition (the
            # writer never takes self.lock while holding the condition).
            self.to_write.put(self.posted)
            return self.posted

    def set_local_maintenance(self, on: bool) -> PostedState:
        with self.lock:
            self.posted = dataclasses.replace(
                self.posted, local_maintenance=on,
                version=self.posted.version + 1, posted_at=self.clock())
            self.to_write.put(self.posted)
            return self.posted

    def request_global_maintenance(self, mode: str) -> None:
        """Hand a global mode to the writer; it replaces a failed one."""
        with self.lock:
            self.to_write_global.put(mode)

    def global_pending(self) -> str | None:
        """The global mode requested and not written yet (None: none)."""
        with self.lock:
            return self._global_pending()

    def _global_pending(self) -> str | None:
        return self.to_write_global.peek() or self.global_retrying

    # -- the writer thread -------------------------------------------------

    def begin_io(self, operation: str) -> None:
        with self.lock:
            self.io.busy = (operation, self.clock())

    def end_io(self, error: BaseException | None = None) -> None:
        with self.lock:
            operation = self.io.busy[0] if self.io.busy else ''
            self.io.busy = None
            now = self.clock()
            if error is not None:
                self.io.failures += 1
                self.io.last_error = '%s: %s' % (operation, error)
                if operation == 'write':
                    self.io.write_failing = True
            elif operation == 'write':
                self.io.writes += 1
                self.io.last_write = now
                self.io.write_failing = False
            elif operation in ('read', 'connect'):
                self.io.reads += 1
                self.io.last_read = now

    def global_writing(self, mode: str) -> None:
        """The writer took global ``mode``: pending until written."""
        with self.lock:
            self.global_retrying = mode

    def global_written(self, mode: str) -> None:
        """The writer wrote global ``mode``: nothing is left to retry."""
        with self.lock:
            self.global_retrying = None
            self.global_error = None

    def global_failed(self, mode: str, error: BaseException | None) -> None:
        """Writing global ``mode`` failed; the writer will retry it."""
        with self.lock:
            self.global_retrying = mode
            self.global_error = 'writing global maintenance %r: %s' % (
                mode, error if error is not None else 'unknown error')

    def wrote(self, posted: PostedState, seq: int) -> None:
        with self.lock:
            self.io.written_version = posted.version
            self.io.written_seq = seq

    def set_connected(self, connected: bool) -> None:
        with self.lock:
            self.io.connected = connected

    def apply_snapshot(self, snapshot: Snapshot, read_at: float,
                       global_maintenance: str | None) -> None:
        with self.lock:
            self.repository.apply(snapshot, read_at, self.group)
            if self.first_read_at is None:
                self.first_read_at = read_at
            self.global_maintenance = global_maintenance

    # -- readers (RPC threads) ---------------------------------------------

    def writer_view(self) -> status.WriterHealth:
        """The writer's health as of now, judged on the broker's clock."""
        with self.lock:
            return self._writer_view(self.clock())

    def _writer_view(self, now: float) -> status.WriterHealth:
        io = self.io
        last_ok = max((t for t in (io.last_write, io.last_read)
                       if t is not None), default=None)
        since = last_ok if last_ok is not None else self.started_at
        busy_for = None if io.busy is None else now - io.busy[1]
        limit = self.stall_after()
        stalled = (now - since > limit
                   or (busy_for is not None and busy_for > limit))
        return status.WriterHealth(
            connected=io.connected,
            healthy=io.connected and not stalled and not io.write_failing,
            stalled=stalled,
            stale_s=round(now - since, 3),
            last_write_age_s=_age(now, io.last_write),
            last_read_age_s=_age(now, io.last_read),
            busy=None if io.busy is None else status.BusyIo(
                io.busy[0], round(busy_for or 0, 3)),
            pending_write=self.to_write.pending,
            superseded=self.to_write.superseded,
            writes=io.writes,
            reads=io.reads,
            failures=io.failures,
            last_error=io.last_error,
            written_version=io.written_version,
            posted_version=self.posted.version,
            written_seq=io.written_seq,
        )

    def view(self) -> StoreView:
        """Own status, writer health and peers, read at one instant."""
        with self.lock:
            now = self.clock()
            posted = self.posted
            members = [peer_of(m, self.member_id)
                       for m in self.repository.members(self.group, now)]
            observed = (None if self.first_read_at is None
                        else round(max(0.0, now - self.first_read_at), 3))
            own = status.OwnState(
                member_id=self.member_id,
                group=self.group,
                state=posted.state,
                score=posted.score,
                payload=dict(posted.payload),
                posted_age_s=round(now - posted.posted_at, 3),
                version=posted.version,
                local_maintenance=posted.local_maintenance,
            )
            return StoreView(own, self._writer_view(now),
                             status.Peers(observed, members),
                             self.global_maintenance,
                             global_pending=self._global_pending(),
                             global_error=self.global_error)
