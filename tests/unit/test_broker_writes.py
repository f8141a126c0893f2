"""Writes the broker acknowledged are never silently lost.

An oversized state is refused before it is accepted, concurrent posts
leave the newest for the writer, a failing write makes the writer
unhealthy and a failed global maintenance write is retried until written.
The writer's steps are called one by one on a test clock: nothing sleeps.
"""

from __future__ import annotations

import threading

import pytest
from tooz import utils as tooz_utils

from heartbeat.broker.handoff import LatestOnly
from heartbeat.broker.store import PostedState
from heartbeat.broker.store import StatusStore
from heartbeat.broker.writer import WriterThread
from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import MAINTENANCE_FLAG
from heartbeat.drivers import record
from heartbeat.drivers.redis import codec
from heartbeat.drivers.storage import layout
from heartbeat.drivers import tooz as tooz_driver
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.testing.memory import MemoryDriver
from tests.unit.test_broker_store import NullConnection


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FlagDriver(MemoryDriver):
    """Holds cluster flags; set_flag fails while ``flag_failures`` > 0."""

    name = 'flags'
    capabilities = frozenset({Capability.BATCHED_READ,
                              Capability.CLUSTER_FLAGS})

    def __init__(self, flag_failures: int = 0) -> None:
        super().__init__()
        self.flags: dict[str, str] = {}
        self.flag_failures = flag_failures
        self.flag_writes: list[str] = []

    def set_flag(self, name: str, value: str) -> None:
        if self.flag_failures > 0:
            self.flag_failures -= 1
            raise exception.BackendError('flag area is read-only')
        self.flag_writes.append(value)
        self.flags[name] = value

    def get_flags(self) -> dict[str, str]:
        return dict(self.flags)


def make_writer(driver: MemoryDriver, clock: Clock | None = None,
                host_id: int | None = 7
                ) -> tuple[StatusStore, WriterThread]:
    clock = clock or Clock()
    store = StatusStore('hosts', 'host-7', down_time=5.0,
                        stall_after=lambda: 60.0, clock=clock)
    writer = WriterThread(store, driver, NullConnection(),
                          report_interval=lambda: 1.0,
                          peer_interval=lambda: 1.0,
                          retry_interval=lambda: 2.0, clock=clock,
                          host_id=host_id)
    return store, writer


def test_an_oversized_state_is_refused_naming_the_limit_and_size() -> None:
    _, writer = make_writer(MemoryDriver())
    writer.check_fits('up', 1, {'vm': 'x' * 1000})
    with pytest.raises(exception.PayloadTooLarge) as info:
        writer.check_fits('up', 1, {'vm': 'x' * 5000})
    size = writer.report_size('up', 1, {'vm': 'x' * 5000})
    assert size > 5000
    assert '4096' in str(info.value) and str(size) in str(info.value)


def test_the_size_bounds_what_the_json_drivers_store() -> None:
    store, writer = make_writer(MemoryDriver())
    payload = {'vm': 'caf\u00e9 ' * 50, 'n': [1, 2.5, None, True]}
    store.set_local_maintenance(True)
    store.put_state('running-somewhere-long', -123456, payload)
    writer.reports.seq = 2 ** 63
    report = writer._report()
    bound = writer.report_size('running-somewhere-long', -123456, payload)
    stored = layout.encode_payload(layout.host_payload(
        report.member_id, report.group, report.state, report.score,
        report.payload))
    assert len(stored) <= bound
    assert len(codec.encode(report)) <= bound
    assert len(tooz_utils.dumps(tooz_driver.to_capabilities(report))) <= bound
    assert len(codec.encode(report)) == len(
        record.ENCODER.encode(record.as_record(report)).encode())


def test_concurrent_posts_leave_the_newest_for_the_writer() -> None:
    store, _ = make_writer(MemoryDriver())
    start = threading.Barrier(8)

    def post(n: int) -> None:
        start.wait()
        for i in range(300):
            store.put_state('s%d-%d' % (n, i), i, {})

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queued = store.to_write.take_nowait()
    assert queued is not None
    assert queued.version == store.posted.version == 8 * 300
    assert queued == store.posted


class LockWitness(LatestOnly[PostedState]):
    """A hand-off that notes whether the store's lock is held on put."""

    def __init__(self, store: StatusStore) -> None:
        super().__init__(store.condition)
        self.store = store
        self.held: list[bool] = []

    def put(self, value: PostedState) -> None:
        self.held.append(self.store.lock.locked())
        super().put(value)


def test_the_hand_off_happens_under_the_version_lock() -> None:
    # Were the lock released before the hand-off, a post could bump the
    # version, lose the CPU, and hand off after a newer post did.
    store, _ = make_writer(MemoryDriver())
    witness = LockWitness(store)
    store.to_write = witness
    store.put_state('up', 1, {})
    store.set_local_maintenance(True)
    assert witness.held == [True, True]
    assert witness.take_nowait() == store.posted


def test_failing_writes_make_the_writer_unhealthy_despite_reads() -> None:
    store, _ = make_writer(MemoryDriver())
    store.set_connected(True)
    store.begin_io('read')
    store.end_io()
    assert store.writer_view().healthy
    store.begin_io('write')
    store.end_io(exception.PayloadTooLarge('too big'))
    store.begin_io('read')
    store.end_io()
    view = store.writer_view()
    assert not view.healthy and not view.stalled
    assert view.last_error == 'write: too big'
    store.begin_io('write')
    store.end_io()
    assert store.writer_view().healthy


def test_a_failed_global_write_is_retried_until_written() -> None:
    clock = Clock()
    driver = FlagDriver(flag_failures=2)
    store, writer = make_writer(driver, clock)
    store.request_global_maintenance('global')
    assert store.view().global_pending == 'global'
    store.global_writing('global')
    assert store.to_write_global.take_nowait() == 'global'
    # Taken by the writer, not yet written: still pending.
    assert store.view().global_pending == 'global'
    store.request_global_maintenance('global')
    assert writer._global_step() == 'global'
    view = store.view()
    assert view.global_pending == 'global'
    assert view.global_error is not None
    assert 'flag area is read-only' in view.global_error
    assert not view.writer.healthy
    # Not before retry_interval: the writer would spin on a broken store.
    clock.now += 1.0
    assert writer._global_step() is None
    clock.now += 1.0
    assert writer._global_step() == 'global'
    assert store.view().global_pending == 'global'
    clock.now += 2.0
    assert writer._global_step() == 'global'
    view = store.view()
    assert driver.flags == {MAINTENANCE_FLAG: 'global'}
    assert view.global_pending is None and view.global_error is None
    clock.now += 10.0
    assert writer._global_step() is None
    assert driver.flag_writes == ['global']


def test_a_newer_request_replaces_the_failed_one() -> None:
    clock = Clock()
    driver = FlagDriver(flag_failures=1)
    store, writer = make_writer(driver, clock)
    store.request_global_maintenance('global')
    assert writer._global_step() == 'global'
    store.request_global_maintenance('none')
    assert store.view().global_pending == 'none'
    assert writer._global_step() == 'none'
    clock.now += 10.0
    assert writer._global_step() is None
    assert driver.flag_writes == ['none']
    assert store.view().global_error is None


class StrictDriver(MemoryDriver):
    """Claims a large limit but refuses payloads over 100 bytes."""

    name = 'strict'

    @property
    def payload_limit(self) -> int:
        return 1 << 20

    def publish(self, report: Report) -> None:
        if len(str(report.payload)) > 100:
            raise exception.PayloadTooLarge('over 100 bytes')
        super().publish(report)


def test_a_state_the_driver_refuses_leaves_the_last_good_published() -> None:
    driver = StrictDriver()
    store, writer = make_writer(driver)
    store.set_connected(True)
    store.put_state('up', 1, {'vm': 'ok'})
    writer._current = store.to_write.take_nowait()
    assert writer._io('write', writer._publish)
    store.put_state('up', 1, {'vm': 'x' * 200})
    writer._current = store.to_write.take_nowait()
    assert not writer._io('write', writer._publish)
    published = driver.reports[('hosts', 'host-7')]
    assert published.payload['vm'] == 'ok' and published.seq == 3
    view = store.writer_view()
    assert view.written_version == 1 and view.posted_version == 2
    assert view.last_error == 'write: over 100 bytes'
    assert not view.healthy
    # The next beat publishes the good state again and is healthy.
    assert writer._io('write', writer._publish)
    assert driver.reports[('hosts', 'host-7')].seq == 4
    assert store.writer_view().healthy
