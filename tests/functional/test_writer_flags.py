"""Global maintenance between two broker writers on a real redis-server.

Before cluster flags only the storage driver could carry it; this runs the
writers' own threads, as brokers do, on the native redis driver.
"""

from __future__ import annotations

from collections.abc import Iterator
import time
import uuid

import pytest

from heartbeat.broker.store import StatusStore
from heartbeat.broker.writer import WriterThread
from heartbeat import drivers
from heartbeat.testing import config
from heartbeat.testing import servers
from tests.unit.test_broker_store import NullConnection

pytestmark = pytest.mark.redis


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[servers.RedisServer]:
    with servers.RedisServer(str(tmp_path_factory.mktemp('redis'))) as srv:
        yield srv


def redis_writer(url: str, prefix: str,
                 host_id: int) -> tuple[StatusStore, WriterThread]:
    conf = config.make_conf(heartbeat={'driver': 'redis',
                                       'report_interval': 0.1})
    conf.set_override('url', url, 'heartbeat_redis')
    conf.set_override('prefix', prefix, 'heartbeat_redis')
    store = StatusStore('hosts', 'host-%d' % host_id, down_time=5.0,
                        stall_after=lambda: 60.0)
    writer = WriterThread(store, drivers.load(conf), NullConnection(),
                          report_interval=lambda: 0.1,
                          peer_interval=lambda: 0.05,
                          retry_interval=lambda: 0.05, host_id=host_id)
    return store, writer


def wait_for_mode(store: StatusStore, mode: str, timeout: float = 5.0
                  ) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.view().global_maintenance == mode:
            return True
        time.sleep(0.02)
    return False


def test_global_maintenance_reaches_every_broker_on_redis(
        redis_server: servers.RedisServer) -> None:
    prefix = 'hb%s' % uuid.uuid4().hex[:8]
    store1, writer1 = redis_writer(redis_server.url, prefix, 1)
    store2, writer2 = redis_writer(redis_server.url, prefix, 2)
    assert writer1.supports_global_maintenance
    writer1.start()
    writer2.start()
    try:
        assert wait_for_mode(store2, 'none')
        store1.request_global_maintenance('global')
        assert wait_for_mode(store1, 'global')
        assert wait_for_mode(store2, 'global')
        store2.request_global_maintenance('none')
        assert wait_for_mode(store1, 'none')
        peers = {p.member_id: p for p in store1.view().peers.members}
        assert peers['host-2'].payload['host_id'] == 2
    finally:
        assert writer1.stop(timeout=5)
        assert writer2.stop(timeout=5)
    assert store1.writer_view().failures == 0
    assert store2.writer_view().failures == 0
