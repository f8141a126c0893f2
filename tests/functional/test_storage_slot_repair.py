"""A live member repairs damage in its own slot; foreign records refuse.

Real ``heartbeat-member`` processes write one metadata file; the test
damages a member's slot while it runs (stopped for the instant of the
write, so that its own next write cannot race the damage) and watches it
through an in-process observer.
"""

import os
import signal
import time

import pytest

from heartbeat.drivers.storage import layout
from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing.members import StorageCluster

pytestmark = pytest.mark.storage

INTERVAL = 0.2
DOWN = 1.0
SLOT = 4096


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=DOWN, max_hosts=8) as cl:
        yield cl


def read_raw(cluster, host_id):
    with open(cluster.metadata_path, 'rb') as f:
        f.seek(host_id * SLOT)
        return f.read(SLOT)


def damage_while_stopped(cluster, host_id, make):
    """Write ``make(current bytes)`` over the slot; return when written."""
    proc = cluster.procs[host_id]
    proc.send_signal(signal.SIGSTOP)
    try:
        data = make(read_raw(cluster, host_id))
        with open(cluster.metadata_path, 'r+b') as f:
            f.seek(host_id * SLOT)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return time.monotonic(), data
    finally:
        proc.send_signal(signal.SIGCONT)


def member_log(cluster, host_id):
    with open(cluster.log_path(host_id), encoding='utf-8') as f:
        return f.read()


def wait_up(sg, member_id, timeout, after_seq=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = sg.get_member('g', member_id)
        if (m is not None and m.status is Status.UP
                and m.invalid_reason is None
                and m.report.seq > after_seq):
            return time.monotonic(), m
        time.sleep(0.01)
    raise AssertionError('%s not up again within %.2fs: %r'
                         % (member_id, timeout, m))


def garbage(current):
    return os.urandom(SLOT)


def bit_flip(current):
    data = bytearray(current)
    data[layout.HEADER_SIZE + 5] ^= 0x10
    return bytes(data)


def torn(current):
    # The first sector of a later record of the same member landed, the
    # rest of the slot still holds the earlier record.
    slot = layout.decode(current, 1)
    later = layout.Slot(
        host_id=1, seq=slot.seq + 1, incarnation=slot.incarnation,
        timestamp=slot.timestamp,
        payload=dict(slot.payload, data={'pad': 'x' * 900}))
    return layout.encode(later, SLOT)[:512] + current[512:]


@pytest.mark.parametrize('make', [garbage, bit_flip, torn],
                         ids=['garbage', 'bit-flip', 'torn'])
def test_damaged_own_slot_is_up_again_within_two_intervals(cluster, make):
    cluster.start_member(1, state='running')
    cluster.start_member(2)
    cluster.wait_joined(1)
    cluster.wait_joined(2)
    with servicegroup.API(cluster.make_conf()) as sg:
        _, before = wait_up(sg, 'member-1', 5)
        damaged_at, _ = damage_while_stopped(cluster, 1, make)
        up_at, after = wait_up(sg, 'member-1', 2 * INTERVAL,
                               after_seq=before.report.seq)
        assert up_at - damaged_at <= 2 * INTERVAL
        assert after.report.incarnation == before.report.incarnation
        assert after.report.state == 'running'
        # It keeps beating: never Down through service_down_time.
        end = time.monotonic() + DOWN + INTERVAL
        while time.monotonic() < end:
            m = sg.get_member('g', 'member-1')
            assert m.status is Status.UP and m.invalid_reason is None
            time.sleep(0.05)
        assert sg.get_member('g', 'member-2').status is Status.UP
    log = member_log(cluster, 1)
    assert log.count('Repaired slot 1') == 1, log
    assert 'repair 1 of this process' in log
    assert 'HostIdConflict' not in log and 'behind our back' not in log
    assert cluster.procs[1].poll() is None


def test_valid_foreign_record_is_still_refused(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    intruder = layout.Slot(
        host_id=1, seq=1000, incarnation=5, timestamp=time.time(),
        payload=layout.host_payload('intruder', 'g', None, None, {}))
    with servicegroup.API(cluster.make_conf()) as sg:
        wait_up(sg, 'member-1', 5)
        _, written = damage_while_stopped(
            cluster, 1, lambda current: layout.encode(intruder, SLOT))
        time.sleep(4 * INTERVAL)
        # Never overwritten: the record is a second writer's, not damage.
        assert read_raw(cluster, 1) == written
        assert sg.get_member('g', 'intruder') is not None
        # The slot now shows the intruder: member-1 is not up there.
        deadline = time.monotonic() + DOWN + 2 * INTERVAL
        while sg.service_is_up('g', 'member-1'):
            assert time.monotonic() < deadline, 'member-1 still up'
            time.sleep(0.05)
    log = member_log(cluster, 1)
    assert 'behind our back' in log and 'intruder' in log
    assert 'Repaired slot' not in log
