"""The broker writer's global maintenance, through the driver's flags.

The storage driver on a real temporary metadata file; the writer's steps
are called one by one, so nothing waits on its thread.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heartbeat.broker.store import StatusStore
from heartbeat.broker.writer import WriterThread
from heartbeat import drivers
from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat.drivers.storage import layout
from heartbeat.model import Report
from heartbeat.testing.members import StorageCluster
from heartbeat.testing.memory import MemoryDriver
from tests.unit.test_broker_store import NullConnection


@pytest.fixture
def cluster(tmp_path: object) -> StorageCluster:
    return StorageCluster(str(tmp_path), report_interval=0.1,
                          service_down_time=0.5, max_hosts=4)


@pytest.fixture
def started() -> Iterator[list[Driver]]:
    drvs: list[Driver] = []
    yield drvs
    for drv in drvs:
        drv.stop()


def writer_for(driver: Driver, host_id: int | None = None,
               member_id: str = 'me') -> tuple[StatusStore, WriterThread]:
    store = StatusStore('hosts', member_id, down_time=5.0,
                        stall_after=lambda: 60.0)
    writer = WriterThread(store, driver, NullConnection(),
                          report_interval=lambda: 3600.0,
                          peer_interval=lambda: 3600.0,
                          retry_interval=lambda: 0.05, host_id=host_id)
    return store, writer


def storage_writer(cluster: StorageCluster, started: list[Driver],
                   host_id: int) -> tuple[StatusStore, WriterThread]:
    drv = drivers.load(cluster.make_conf(host_id=host_id))
    started.append(drv)
    store, writer = writer_for(drv, host_id, 'host-%d' % host_id)
    assert writer._connect()
    return store, writer


def test_global_maintenance_is_written_and_read_back_by_peers(
        cluster: StorageCluster, started: list[Driver]) -> None:
    store1, writer1 = storage_writer(cluster, started, 1)
    store2, writer2 = storage_writer(cluster, started, 2)
    assert writer1.supports_global_maintenance
    writer2._refresh()
    assert store2.view().global_maintenance == 'none'
    assert writer1._io('write', writer1._write_global, 'global')
    writer2._refresh()
    assert store2.view().global_maintenance == 'global'
    assert writer1._io('write', writer1._write_global, 'none')
    writer2._refresh()
    assert store2.view().global_maintenance == 'none'
    assert store1.writer_view().failures == 0


def test_reports_carry_the_host_id(cluster: StorageCluster,
                                   started: list[Driver]) -> None:
    _, writer = storage_writer(cluster, started, 3)
    report = writer._report()
    assert report.payload['host_id'] == 3
    assert report.payload['maintenance'] == 'none'
    _, unnamed = writer_for(MemoryDriver())
    assert 'host_id' not in unnamed._report().payload


def test_a_failed_flag_read_keeps_the_peers_and_the_mode(
        cluster: StorageCluster, started: list[Driver]) -> None:
    store, writer = storage_writer(cluster, started, 1)
    assert writer._io('write', writer._write_global, 'global')
    writer._refresh()
    peer = drivers.load(cluster.make_conf(host_id=2))
    started.append(peer)
    peer.start()
    peer.join('hosts', 'host-2')
    peer.publish(Report(member_id='host-2', group='hosts', seq=1,
                        incarnation=1, state='up'))
    with open(cluster.metadata_path, 'r+b') as f:
        f.seek(layout.HEADER_SIZE + 2)
        f.write(b'X')
    writer._refresh()
    view = store.view()
    assert [p.member_id for p in view.peers.members] == ['host-2']
    assert view.global_maintenance == 'global'
    assert view.writer.failures == 1
    assert view.writer.last_error is not None
    assert view.writer.last_error.startswith('read: ')
    assert 'slot 0' in view.writer.last_error


class PeersOnly(MemoryDriver):
    """A driver without cluster flags that fails if they are asked for."""

    name = 'peers-only'

    def get_flags(self) -> dict[str, str]:
        raise AssertionError('get_flags called without CLUSTER_FLAGS')


def test_without_the_capability_peers_are_read_and_writes_refused() -> None:
    drv = PeersOnly()
    assert Capability.CLUSTER_FLAGS not in drv.capabilities
    store, writer = writer_for(drv, 1)
    assert not writer.supports_global_maintenance
    assert writer._connect()
    writer._refresh()
    assert store.view().global_maintenance is None
    assert store.writer_view().failures == 0
    assert not writer._io('write', writer._write_global, 'global')
    error = store.writer_view().last_error
    assert error is not None
    assert "Driver 'peers-only' cannot hold cluster-wide flags" in error
