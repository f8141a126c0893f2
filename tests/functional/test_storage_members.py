"""Real member processes heartbeating into one metadata file."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing.members import StorageCluster

pytestmark = pytest.mark.storage

INTERVAL = 0.2
DOWN = 1.0


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=DOWN, max_hosts=16) as cl:
        yield cl


def run_cli(module, *args, timeout=60):
    return subprocess.run([sys.executable, '-m', module, *args],
                          capture_output=True, text=True, timeout=timeout,
                          check=False)


def wait_status(sg, group, member_id, status, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = sg.get_member(group, member_id)
        if m is not None and m.status is status:
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError('%s never became %s' % (member_id, status))


def test_kill_one_of_three(cluster):
    for host_id in (1, 2, 3):
        cluster.start_member(host_id)
    for host_id in (1, 2, 3):
        cluster.wait_joined(host_id)
    with servicegroup.API(cluster.make_conf()) as sg:
        for host_id in (1, 2, 3):
            wait_status(sg, 'g', 'member-%d' % host_id, Status.UP, 5)
        killed_at = time.monotonic()
        cluster.kill(2)
        down_at = None
        while time.monotonic() < killed_at + DOWN + 3 * INTERVAL:
            members = {m.member_id: m.status for m in sg.get_all('g')}
            assert members['member-1'] is Status.UP
            assert members['member-3'] is Status.UP
            if down_at is None and members['member-2'] is Status.DOWN:
                down_at = time.monotonic()
            time.sleep(0.02)
        assert down_at is not None, 'killed member never reported down'
        # The last beat was at most one interval before the kill.
        assert down_at - killed_at <= DOWN + INTERVAL
        assert down_at - killed_at >= DOWN - INTERVAL


def test_garbage_slot_does_not_hide_others(cluster):
    for host_id in (1, 2, 3):
        cluster.start_member(host_id)
    for host_id in (1, 2, 3):
        cluster.wait_joined(host_id)
    with servicegroup.API(cluster.make_conf()) as sg:
        wait_status(sg, 'g', 'member-1', Status.UP, 5)
        cluster.kill(2)
        with open(cluster.metadata_path, 'r+b') as f:
            f.seek(2 * 4096)
            f.write(os.urandom(4096))
        members = {m.member_id: m for m in sg.get_all('g')}
        assert members['member-2'].invalid_reason
        time.sleep(3 * INTERVAL)
        members = {m.member_id: m for m in sg.get_all('g')}
        assert members['member-1'].status is Status.UP
        assert members['member-3'].status is Status.UP
    dump = run_cli('heartbeat.cmd.storage', '--config-file',
                   cluster.config_path, 'dump', '--json')
    assert dump.returncode == 0, dump.stderr
    slots = {s['host_id']: s for s in json.loads(dump.stdout)['slots']}
    assert slots[2]['status'] == 'invalid' and slots[2]['reason']
    assert slots[1]['status'] == 'valid'


def test_restart_comes_back_up(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    with servicegroup.API(cluster.make_conf()) as sg:
        wait_status(sg, 'g', 'member-1', Status.UP, 5)
        cluster.kill(1)
        wait_status(sg, 'g', 'member-1', Status.DOWN, DOWN + 2)
        cluster.start_member(1)
        cluster.wait_joined(1)
        wait_status(sg, 'g', 'member-1', Status.UP, 5)


def test_duplicate_host_id_is_refused(cluster):
    cluster.start_member(4, member_id='first')
    cluster.wait_joined(4)
    second = run_cli('heartbeat.cmd.member', '--config-file',
                     cluster.config_path, '--host-id', '4', '--group', 'g',
                     '--member-id', 'second', timeout=30)
    assert second.returncode == 2
    assert 'host_id 4' in second.stderr
    with servicegroup.API(cluster.make_conf()) as sg:
        time.sleep(2 * INTERVAL)
        m = wait_status(sg, 'g', 'first', Status.UP, 5)
        assert m
        assert sg.get_member('g', 'second') is None


def test_unwritable_area_names_the_file(cluster):
    # Tests run as root, which ignores permission bits: the immutable
    # attribute makes the file unwritable even for root.
    subprocess.run(['chattr', '+i', cluster.metadata_path], check=True)
    try:
        res = run_cli('heartbeat.cmd.member', '--config-file',
                      cluster.config_path, '--host-id', '5', '--group', 'g',
                      '--member-id', 'x', timeout=30)
        # Observers only need to read it.
        status = run_cli('heartbeat.cmd.status', '--config-file',
                         cluster.config_path, '--settle', '0')
    finally:
        subprocess.run(['chattr', '-i', cluster.metadata_path], check=True)
    assert res.returncode == 2
    assert cluster.metadata_path in res.stderr
    assert 'not permitted' in res.stderr
    assert 'read/write access' in res.stderr
    assert status.returncode == 0, status.stderr


def test_host_id_out_of_range(cluster):
    res = run_cli('heartbeat.cmd.member', '--config-file',
                  cluster.config_path, '--host-id', '17', '--group', 'g',
                  timeout=30)
    assert res.returncode == 2
    assert 'max_hosts' in res.stderr


def test_status_cli_json(cluster):
    cluster.start_member(1, state='running')
    cluster.start_member(2, group='other')
    cluster.wait_joined(1)
    cluster.wait_joined(2)
    res = run_cli('heartbeat.cmd.status', '--config-file',
                  cluster.config_path, '--json')
    assert res.returncode == 0, res.stderr
    rows = {r['member_id']: r for r in json.loads(res.stdout)}
    assert set(rows) == {'member-1', 'member-2'}
    one = rows['member-1']
    assert one['group'] == 'g' and one['up'] is True
    assert one['state'] == 'running' and one['seq'] >= 1
    assert 0 <= one['last_change_age_s'] < 1
    res = run_cli('heartbeat.cmd.status', '--config-file',
                  cluster.config_path, '--group', 'other')
    assert res.returncode == 0, res.stderr
    assert 'member-2' in res.stdout and 'member-1' not in res.stdout


def test_storage_init_refuses_live_area(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    res = run_cli('heartbeat.cmd.storage', '--config-file',
                  cluster.config_path, 'init')
    assert res.returncode == 2
    assert 'live members' in res.stderr and '--force' in res.stderr
    res = run_cli('heartbeat.cmd.storage', '--config-file',
                  cluster.config_path, 'init', '--force')
    assert res.returncode == 0, res.stderr


def test_member_leaves_on_sigterm(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    assert cluster.stop_member(1) == 0
    with servicegroup.API(cluster.make_conf()) as sg:
        assert sg.get_member('g', 'member-1').status is Status.LEFT


def test_state_file_changes_state(cluster, tmp_path):
    state = tmp_path / 'state'
    state.write_text('starting\n')
    cluster.start_member(1, state_file=str(state))
    cluster.wait_joined(1)
    with servicegroup.API(cluster.make_conf()) as sg:
        assert sg.get_member('g', 'member-1').report.state == 'starting'
        state.write_text('running\n')
        deadline = time.monotonic() + 5
        while sg.get_member('g', 'member-1').report.state != 'running':
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_sigkill_leaves_no_left_flag(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    cluster.kill(1, signal.SIGKILL)
    assert cluster.read_slot(1) is not None
