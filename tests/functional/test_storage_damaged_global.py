"""The diagnosis commands while slot 0 of a live area is damaged.

Real ``heartbeat-member`` processes write one metadata file; the test
damages its global slot 0 (or a host slot) and runs ``heartbeat-status``
and ``heartbeat-storage`` as the operator would, in processes of their
own.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from heartbeat import drivers
from heartbeat.drivers.storage import layout
from heartbeat.testing import damage
from heartbeat.testing.members import StorageCluster

pytestmark = pytest.mark.storage

INTERVAL = 0.2
DOWN = 1.0
SLOT = 4096


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=DOWN, max_hosts=8) as cl:
        cl.start_member(1, state='running')
        cl.start_member(2)
        cl.wait_joined(1)
        cl.wait_joined(2)
        yield cl


def run_cli(cluster, module, *args):
    return subprocess.run(
        [sys.executable, '-m', module, '--config-file', cluster.config_path,
         *args], capture_output=True, text=True, timeout=60, check=False)


def status(cluster, *args):
    return run_cli(cluster, 'heartbeat.cmd.status', *args)


def storage(cluster, *args):
    return run_cli(cluster, 'heartbeat.cmd.storage', *args)


def write_at(cluster, offset, data):
    damage.write_at(cluster.metadata_path, offset, data)


def slot0(cluster):
    return damage.read_slot(cluster.metadata_path, 0)


DAMAGE = damage.GLOBAL_DAMAGE


def by_location(rows):
    return {r['location']: r for r in rows}


@pytest.mark.parametrize('name', sorted(DAMAGE))
def test_damaged_slot0_is_shown_with_the_host_slots(cluster, name):
    make, reason = DAMAGE[name]
    write_at(cluster, 0, make(slot0(cluster)))

    res = status(cluster, '--json')
    assert res.returncode == 1, res.stderr
    rows = by_location(json.loads(res.stdout))
    assert set(rows) == {'slot 0', 'slot 1', 'slot 2'}
    assert rows['slot 1']['member_id'] == 'member-1'
    assert rows['slot 1']['state'] == 'running' and rows['slot 1']['up']
    assert rows['slot 2']['member_id'] == 'member-2'
    glob = rows['slot 0']
    assert glob['status'] == 'invalid' and glob['member_id'] is None
    assert reason in glob['invalid_reason']
    assert glob['geometry'] == {'slot_size': SLOT, 'max_hosts': 8,
                                'source': 'configuration'}
    assert 'repair-global' in glob['repair']
    assert cluster.config_path in glob['repair']

    res = status(cluster)
    assert res.returncode == 1, res.stderr
    assert 'member-1' in res.stdout and 'member-2' in res.stdout
    assert reason in res.stdout and 'repair-global' in res.stdout
    assert 'slot_size=4096 max_hosts=8' in res.stdout

    res = storage(cluster, 'dump', '--json')
    assert res.returncode == 1, res.stderr
    dump = json.loads(res.stdout)
    assert dump['global'] is None
    assert reason in dump['global_problem']['reason']
    assert 'repair-global' in dump['global_problem']['repair']
    assert dump['geometry']['source'] == 'configuration'
    assert [(s['host_id'], s['status'], s['member_id'])
            for s in dump['slots']] == [(1, 'valid', 'member-1'),
                                        (2, 'valid', 'member-2')]

    res = storage(cluster, 'dump')
    assert res.returncode == 1, res.stderr
    assert reason in res.stdout and 'repair: ' in res.stdout
    assert 'member-1' in res.stdout and 'member-2' in res.stdout


@pytest.mark.parametrize('name', sorted(DAMAGE))
def test_repair_global_while_members_run(cluster, name):
    make, _ = DAMAGE[name]
    write_at(cluster, 0, make(slot0(cluster)))
    before = cluster.read_slot(1)
    args = ['repair-global']
    if name == 'newer':
        res = storage(cluster, *args)
        assert res.returncode == 2
        assert 'newer heartbeat' in res.stderr and '--force' in res.stderr
        args.append('--force')
    res = storage(cluster, *args)
    assert res.returncode == 0, res.stderr
    assert 'Repaired slot 0' in res.stdout
    assert '2 host slots kept' in res.stdout

    res = status(cluster, '--json')
    assert res.returncode == 0, res.stderr
    rows = by_location(json.loads(res.stdout))
    assert set(rows) == {'slot 1', 'slot 2'}
    assert rows['slot 1']['up'] and rows['slot 1']['state'] == 'running'
    # The same member process kept its slot: same incarnation.
    assert rows['slot 1']['incarnation'] == before[0]
    res = storage(cluster, 'dump', '--json')
    assert res.returncode == 0, res.stderr
    dump = json.loads(res.stdout)
    assert dump['global_problem'] is None
    assert dump['global']['maintenance'] == 'none'
    assert dump['geometry']['source'] == 'slot 0'
    # Flags can be set again.
    drv = drivers.load(cluster.make_conf())
    drv.start()
    try:
        drv.set_flag('maintenance', 'global')
    finally:
        drv.stop()
    res = storage(cluster, 'dump', '--json')
    assert json.loads(res.stdout)['global']['maintenance'] == 'global'


def test_repair_global_refuses_a_geometry_the_host_slots_deny(cluster):
    write_at(cluster, 0, os.urandom(SLOT))
    damaged = slot0(cluster)
    other = os.path.join(cluster.workdir, 'other.conf')
    with open(cluster.config_path, encoding='utf-8') as f:
        text = f.read()
    with open(other, 'w', encoding='utf-8') as f:
        f.write(text + 'slot_size = 2048\n')
    res = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.storage', '--config-file',
         other, 'repair-global'], capture_output=True, text=True,
        timeout=60, check=False)
    assert res.returncode == 2
    assert 'do not fit the host slots found' in res.stderr
    assert 'host_id 1 at offset 4096' in res.stderr
    assert slot0(cluster) == damaged


def test_invalid_host_slot_is_a_row_with_its_reason(cluster):
    # Slot 3 never held a member this observer knew: garbage there is
    # still a row, and the members are unaffected.
    write_at(cluster, 3 * SLOT, layout.MAGIC + os.urandom(SLOT - 8))
    write_at(cluster, 4 * SLOT, damage.bit_flip(layout.encode(layout.Slot(
        host_id=4, seq=1, incarnation=1, timestamp=0.0,
        payload=layout.host_payload('gone', 'g', None, None, {})), SLOT)))
    res = status(cluster, '--json')
    assert res.returncode == 0, res.stderr
    rows = by_location(json.loads(res.stdout))
    assert set(rows) == {'slot 1', 'slot 2', 'slot 3', 'slot 4'}
    assert rows['slot 3']['status'] == 'invalid'
    assert rows['slot 3']['invalid_reason']
    assert 'CRC mismatch' in rows['slot 4']['invalid_reason']
    assert rows['slot 1']['up'] and rows['slot 1']['invalid_reason'] is None
    res = status(cluster)
    assert res.returncode == 0, res.stderr
    assert 'invalid: CRC mismatch' in res.stdout and 'slot 4' in res.stdout
    res = storage(cluster, 'dump', '--json')
    assert res.returncode == 0, res.stderr
    slots = {s['host_id']: s for s in json.loads(res.stdout)['slots']}
    assert slots[4]['status'] == 'invalid'
    assert 'CRC mismatch' in slots[4]['reason']


def test_watch_streams_events_while_slot0_is_damaged(cluster):
    write_at(cluster, 0, os.urandom(SLOT))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'heartbeat.cmd.status', '--config-file',
         cluster.config_path, '--watch', '--json'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = {json.loads(proc.stdout.readline())['member_id']
                for _ in range(2)}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert seen == {'member-1', 'member-2'}
    assert proc.returncode == 1
    assert 'bad magic' in err and 'repair-global' in err
