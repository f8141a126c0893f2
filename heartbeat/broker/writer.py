"""The writer thread: the broker's only path to the shared storage.

It connects the storage (retrying while it is unavailable), publishes the
newest posted state on every report_interval and at once when a new state
is posted, writes global maintenance requests as the driver's cluster flag
``maintenance`` (drivers with the CLUSTER_FLAGS capability), and reads the
peers and that flag into the store.  Only the newest posted state is ever
written: states posted while a write is stuck are superseded in the
one-place hand-off.  A stalled storage blocks this thread alone; the store
records which operation is stuck and since when, so get_status can say so.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import json
import math
import threading
from typing import Any

from oslo_log import log as logging

from heartbeat.broker.connection import StorageConnection
from heartbeat.broker.status import AGENT_STALE
from heartbeat.broker.status import agent_stale
from heartbeat.broker.store import PostedState
from heartbeat.broker.store import StatusStore
from heartbeat import clock as clock_mod
from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat.drivers.base import MAINTENANCE_FLAG
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.reports import ReportSequence

LOG = logging.getLogger(__name__)


class WriterThread:
    """Runs the storage side of a broker; see the module docstring."""

    def __init__(self, store: StatusStore, driver: Driver,
                 connection: StorageConnection,
                 report_interval: Callable[[], float],
                 peer_interval: Callable[[], float],
                 retry_interval: Callable[[], float],
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC),
                 host_id: int | None = None) -> None:
        """Set up the writer; start() runs it.

        ``host_id`` ([heartbeat] host_id), when given, is published in
        every report's payload as ``host_id``.
        """
        self.store = store
        self.driver = driver
        self.connection = connection
        self.report_interval = report_interval
        self.peer_interval = peer_interval
        self.retry_interval = retry_interval
        self.clock = clock_mod.as_clock(clock)
        self.reports = ReportSequence(store.member_id, store.group)
        self._current: PostedState | None = None
        #: The newest state a publish accepted.
        self._last_good: PostedState | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._joined = False
        self.host_id = host_id
        #: The newest maintenance flag read (None until a read succeeds).
        self._global_mode: str | None = None
        #: A global mode whose write failed, and when to try it again.
        self._global_retry: str | None = None
        self._global_retry_at = math.inf
        #: Why the newest _io call failed (None: it did not).
        self._io_error: BaseException | None = None

    def report_size(self, state: str | None, score: int | None,
                    payload: Mapping[str, Any]) -> int:
        """Bytes of the report of this state, as large as it can grow.

        The report is encoded as compact JSON with every field a driver
        may store and everything the writer adds to the payload, at its
        longest (seq and incarnation of 64 bits, the longest float text,
        local maintenance, the stale mark).  The JSON drivers store a
        subset of these fields the same way, so a report that fits here
        fits them.
        """
        data = dict(payload)
        data.update(self._additions(local_maintenance=True, stale=True))
        record = {'member_id': self.store.member_id,
                  'group': self.store.group, 'seq': 2 ** 64 - 1,
                  'inc': 2 ** 64 - 1, 'state': state, 'score': score,
                  'data': data, 'at': -2.2250738585072014e-308,
                  'left': False}
        return len(json.dumps(record, separators=(',', ':'),
                              sort_keys=True, default=str).encode('utf-8'))

    def check_fits(self, state: str | None, score: int | None,
                   payload: Mapping[str, Any]) -> None:
        """PayloadTooLarge unless this state's report fits the driver.

        Called before a state is accepted: a state that cannot be
        published must never replace the last one that can.
        """
        size = self.report_size(state, score, payload)
        limit = self.driver.payload_limit
        if size > limit:
            raise exception.PayloadTooLarge(
                'State refused: its report would be %d bytes, above the '
                'payload limit of the %s driver (%d bytes); post a smaller '
                'state/payload. The last accepted state stays published.'
                % (size, self.driver.name, limit))

    @property
    def supports_global_maintenance(self) -> bool:
        """Whether the driver holds the flags global maintenance needs."""
        return Capability.CLUSTER_FLAGS in self.driver.capabilities

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='broker-writer',
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop (leaving the group if storage allows); False if stuck."""
        self._stop.set()
        with self.store.condition:
            self.store.condition.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            LOG.warning('The broker writer is stuck on the storage (%s); '
                        'exiting without marking this host as left.',
                        self.store.writer_view().busy)
            return False
        self._thread = None
        return True

    # -- the loop ----------------------------------------------------------

    def reschedule(self) -> None:
        """Re-read the intervals now (after a reload)."""
        with self.store.condition:
            self.store.condition.notify_all()

    def _run(self) -> None:
        # The next beat and read are due an interval after the last ones,
        # with the interval read on every wake-up so that reloads apply.
        last_beat = last_read = -math.inf
        while not self._stop.is_set():
            if not self._joined:
                if not self._connect():
                    self.clock.wait(self._stop, self.retry_interval())
                    continue
                last_beat = last_read = -math.inf
            with self.store.condition:
                while not self._stop.is_set():
                    now = self.clock()
                    due = min(last_beat + self.report_interval(),
                              last_read + self.peer_interval(),
                              self._global_retry_at)
                    if (self.store.to_write.pending
                            or self.store.to_write_global.pending
                            or now >= due):
                        break
                    self.clock.wait(self.store.condition, due - now)
            if self._stop.is_set():
                break
            mode = self._global_step()
            posted = self.store.to_write.take_nowait()
            if (posted is not None
                    or self.clock() >= last_beat + self.report_interval()):
                if posted is not None:
                    self._current = posted
                self._io('write', self._publish)
                last_beat = self.clock()
            if (self.clock() >= last_read + self.peer_interval()
                    or mode is not None):
                self._refresh()
                last_read = self.clock()
        self._leave()

    def _global_step(self) -> str | None:
        """Write the newest global mode requested, or retry a failed one.

        The mode attempted (None if none was due).  A failed write is
        tried again every retry_interval until it is written or a newer
        request replaces it; the store reports the failure meanwhile.
        """
        mode = self.store.to_write_global.take_nowait()
        if mode is None and self.clock() >= self._global_retry_at:
            mode = self._global_retry
        if mode is None:
            return None
        self.store.global_writing(mode)
        if self._io('write', self._write_global, mode):
            self._global_retry, self._global_retry_at = None, math.inf
            self.store.global_written(mode)
        else:
            self._global_retry = mode
            self._global_retry_at = self.clock() + self.retry_interval()
            self.store.global_failed(mode, self._io_error)
        return mode

    def _io(self, operation: str, func: Callable[..., None],
            *args: Any) -> bool:
        self.store.begin_io(operation)
        self._io_error = None
        try:
            func(*args)
        except exception.HeartbeatError as err:
            self._io_error = err
            self.store.end_io(err)
            LOG.error('Broker storage %s failed: %s', operation, err)
            return False
        except Exception as err:
            # Keep the only storage thread alive whatever the driver does.
            self._io_error = err
            self.store.end_io(err)
            LOG.exception('Broker storage %s failed unexpectedly', operation)
            return False
        self.store.end_io()
        return True

    def _connect(self) -> bool:
        def connect() -> None:
            self.connection.connect()
            self.driver.start()
            self.driver.join(self.store.group, self.store.member_id)
        ok = self._io('connect', connect)
        if ok:
            self._joined = True
            self.store.set_connected(True)
            LOG.info('Broker connected to the storage and joined %s as %s.',
                     self.store.group, self.store.member_id)
            if not self.supports_global_maintenance:
                LOG.warning('Driver %r declares no cluster flags: global '
                            'maintenance cannot be set or seen by this '
                            'broker; use [heartbeat] driver = storage or '
                            'redis for it.', self.driver.name)
        else:
            try:
                self.driver.stop()
            except exception.HeartbeatError as err:
                LOG.debug('Ignoring error stopping the driver: %s', err)
        return ok

    def _report(self, left: bool = False) -> Report:
        posted = self._current or self.store.posted
        payload = dict(posted.payload)
        payload.update(self._additions(
            posted.local_maintenance,
            # The agent stopped posting: what it last said (the workload
            # runs here) may no longer be true, and peers must not trust it.
            agent_stale(posted.payload, posted.posted_at, self.clock())))
        return self.reports.next(posted.state, posted.score, payload,
                                 left=left)

    def _additions(self, local_maintenance: bool,
                   stale: bool) -> dict[str, Any]:
        """What the writer adds to the posted payload in every report."""
        extra: dict[str, Any] = {
            'maintenance': 'local' if local_maintenance else 'none'}
        if self.host_id is not None:
            # Lets peers and clients map a member to its sanlock host id.
            extra['host_id'] = self.host_id
        if stale:
            extra[AGENT_STALE] = True
        return extra

    def _publish(self) -> None:
        """Publish the current state; fall back to the last one written.

        A driver may still refuse a state check_fits let through (its own
        encoding, a payload the writer grew): then the last state written
        is published again, so the host stays up with what it said
        before, and the refusal is raised to be counted and logged.
        """
        current = self._current or self.store.posted
        report = self._report()
        try:
            self.driver.publish(report)
        except exception.PayloadTooLarge:
            good = self._last_good
            if good is None or good is current:
                raise
            self._current = good
            report = self._report()
            self.driver.publish(report)
            self.store.wrote(good, report.seq)
            raise
        self._last_good = current
        self.store.wrote(current, report.seq)

    def _write_global(self, mode: str) -> None:
        # Drivers without cluster flags raise CapabilityMissing, which _io
        # records as the failure of this write.
        self.driver.set_flag(MAINTENANCE_FLAG, mode)
        LOG.info('Global maintenance set to %s.', mode)

    def _refresh(self) -> None:
        """Read the cluster flags, then the peers, as two storage reads.

        A failed flag read is recorded (and logged) as a failed read and
        keeps the mode read before, since a passing fault must not look
        like the end of global maintenance; the peers are still read.
        """
        if self.supports_global_maintenance:
            self._io('read', self._read_flags)
        self._io('read', self._read_peers)

    def _read_flags(self) -> None:
        self._global_mode = self.driver.get_flags().get(MAINTENANCE_FLAG)

    def _read_peers(self) -> None:
        snapshot = self.driver.snapshot(self.store.group)
        self.store.apply_snapshot(snapshot, self.clock(), self._global_mode)

    def _leave(self) -> None:
        if self._joined:
            self._io('write', lambda: self.driver.leave(
                self._report(left=True)))
        try:
            self.driver.stop()
        except exception.HeartbeatError as err:
            LOG.debug('Ignoring error stopping the driver: %s', err)
        self.connection.disconnect()
        self._joined = False
        self.store.set_connected(False)
