"""heartbeat-status gives a verdict: down members are called down.

Without a broker it reads the group until every member is judged (a
silent one after service_down_time, said on stderr) and exits 1 when one
is down; --quick keeps the fast answer with "unknown"; with a local broker
running, the broker's observer answers at once.  Records it cannot place
(duplicate member ids) are rows of their own.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.members import StorageCluster
from heartbeat.testing.waiting import wait_for

INTERVAL = 0.1
DOWN = 1.0


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=DOWN, max_hosts=8) as cl:
        yield cl


def status(config, *args):
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.status', '--config-file',
         config, *args], capture_output=True, text=True, timeout=60,
        check=False)
    return proc, time.monotonic() - started


def rows(proc):
    return {(r['member_id'], r['location']): r
            for r in json.loads(proc.stdout)}


@pytest.mark.storage
def test_a_killed_member_is_called_down_after_service_down_time(cluster):
    for host_id in (1, 2):
        cluster.start_member(host_id)
        cluster.wait_joined(host_id)
    cluster.kill(2)
    proc, took = status(cluster.config_path, '--json')
    assert proc.returncode == 1, proc.stderr
    got = rows(proc)
    assert got[('member-2', 'slot 2')]['status'] == 'down'
    assert got[('member-2', 'slot 2')]['up'] is False
    assert got[('member-1', 'slot 1')]['up'] is True
    assert DOWN <= took < DOWN + 5, took
    assert 'not seen changing yet' in proc.stderr
    assert 'service_down_time' in proc.stderr
    json.loads(proc.stdout)


@pytest.mark.storage
def test_quick_answers_at_once_with_unknown(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    cluster.kill(1)
    proc, took = status(cluster.config_path, '--json', '--quick')
    assert proc.returncode == 0, proc.stderr
    assert rows(proc)[('member-1', 'slot 1')]['up'] is None
    assert took < DOWN + 2


@pytest.mark.storage
def test_all_up_answers_within_a_beat(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    proc, took = status(cluster.config_path)
    assert proc.returncode == 0, proc.stderr
    assert took < DOWN + 2, took
    assert 'up' in proc.stdout and 'not seen changing' not in proc.stderr


@pytest.mark.storage
def test_duplicate_member_ids_are_rows_of_their_own(cluster):
    cluster.start_member(1, member_id='twin')
    cluster.start_member(2, member_id='twin')
    cluster.wait_joined(1)
    cluster.wait_joined(2)
    proc, _ = status(cluster.config_path, '--json')
    listed = json.loads(proc.stdout)
    locations = sorted(r['location'] for r in listed)
    assert locations == ['slot 1', 'slot 2'], listed
    dup = [r for r in listed if r['status'] == 'invalid']
    assert len(dup) == 1 and 'duplicate member id g/twin' in (
        dup[0]['invalid_reason']), listed


@pytest.mark.broker
@pytest.mark.storage
def test_a_local_broker_answers_from_its_history():
    down = 6.0
    workdir = short_dir('hbv')
    metadata = os.path.join(workdir, 'metadata')
    overrides = {'heartbeat': {'service_down_time': down}}
    first = BrokerProcess(workdir, 1, metadata, overrides=overrides)
    second = BrokerProcess(workdir, 2, metadata, overrides=overrides)
    init_area(first.config_path)
    first.start()
    second.start()
    try:
        def peers():
            return {p.host_id: p.status
                    for p in first.status().peers.members}

        wait_for(lambda: peers() == {1: 'up', 2: 'up'}, 20)
        second.kill()
        wait_for(lambda: peers().get(2) == 'down', down + 10)
        proc, took = status(first.config_path, '--json', '--debug')
        assert proc.returncode == 1, proc.stderr
        assert 'Answered by the observer of the broker' in proc.stderr
        got = {r['member_id']: r['status'] for r in json.loads(proc.stdout)}
        assert sorted(got.values()) == ['down', 'up'], got
        # A fresh observer would need service_down_time to say so.
        assert took < down / 2, took
    finally:
        second.stop()
        first.stop()
