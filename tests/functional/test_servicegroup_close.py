"""servicegroup.API.close() is bounded while its storage hangs (FUSE stall)."""

import threading
import time

import pytest

from heartbeat.cluster.fuse import PausableMount
from heartbeat import servicegroup
from heartbeat.testing.broker import short_dir
from heartbeat.testing.members import StorageCluster
from heartbeat.testing.waiting import wait_for

pytestmark = [pytest.mark.fuse]

BOUND = 2.0


@pytest.fixture
def mount():
    with PausableMount(short_dir('hbfuse')) as m:
        yield m


def test_close_returns_within_its_bound_while_storage_stalls(mount):
    cluster = StorageCluster(mount.mountpoint, report_interval=0.1,
                             service_down_time=0.5, max_hosts=4)
    member = servicegroup.API(cluster.make_conf(host_id=1))
    observer = servicegroup.API(cluster.make_conf())
    events = []
    try:
        member.join('a', 'g')
        observer.watch('g', events.append)
        wait_for(lambda: any(e.kind == 'up' for e in events))
        monitor = observer.monitor
        mount.pause()
        # Let the monitor loop and the reporter block in their I/O.
        cycles = monitor.stats.cycles
        time.sleep(1.0)
        assert monitor.stats.cycles <= cycles + 1
        for api in (observer, member):
            start = time.monotonic()
            assert api.close(timeout=BOUND) is False
            assert time.monotonic() - start < BOUND + 0.5
        names = [t.name for t in threading.enumerate()]
        assert 'heartbeat-monitor' in names
    finally:
        mount.resume()
    # Once the storage answers again the abandoned threads end.
    wait_for(lambda: 'heartbeat-monitor' not in [
        t.name for t in threading.enumerate()], timeout=10)
    # A second close is immediate and has nothing left to abandon.
    assert observer.close(timeout=BOUND) is True
