"""A heartbeat-member that can no longer publish does not pretend.

Its slot is wiped behind its back (or it keeps failing to write): it
counts the failures, and after --max-failures reports in a row it exits
with status 1 and says why on stderr, so a supervisor restarts it.
"""

import os
import time

import pytest

from heartbeat.drivers import storage
from heartbeat.testing.members import StorageCluster

pytestmark = pytest.mark.storage

INTERVAL = 0.1


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=1.0, max_hosts=4) as cl:
        yield cl


def _wipe(cluster, host_id):
    area = storage.open_area(cluster.make_conf(), writable=True)
    try:
        size = area.geometry.slot_size
        area.write_raw(host_id, b'\0' * size)
    finally:
        area.close()


def test_member_whose_slot_was_wiped_exits_non_zero(cluster):
    proc = cluster.start_member(2, extra=['--max-failures', '3'])
    cluster.wait_joined(2)
    time.sleep(3 * INTERVAL)
    _wipe(cluster, 2)
    wiped = time.monotonic()
    assert proc.wait(timeout=10) == 1
    took = time.monotonic() - wiped
    # Three failed beats, plus at most one check period of the loop.
    assert took < 3 * INTERVAL + 1.5, took
    with open(cluster.log_path(2), encoding='utf-8') as f:
        log = f.read()
    lines = [line for line in log.splitlines() if 'giving up' in line]
    assert len(lines) == 1, log[-2000:]
    assert 'the last 3 reports failed' in lines[0]
    assert 'overwritten behind our back' in lines[0]
    assert 'Traceback' not in log


def test_zero_keeps_retrying(cluster):
    proc = cluster.start_member(3, extra=['--max-failures', '0'])
    cluster.wait_joined(3)
    _wipe(cluster, 3)
    time.sleep(10 * INTERVAL)
    assert proc.poll() is None
    assert os.path.getsize(cluster.log_path(3)) > 0
