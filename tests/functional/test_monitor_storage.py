"""Watching real member processes on the storage driver."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from heartbeat import servicegroup
from heartbeat.testing.events import EventRecorder
from heartbeat.testing.members import StorageCluster

pytestmark = pytest.mark.storage

INTERVAL = 0.2
DOWN = 1.0
#: How late a Down may come after the member's last beat, beyond DOWN.
SLACK = 1.0


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=DOWN, max_hosts=16) as cl:
        yield cl


def start(cluster, *host_ids, **kwargs):
    for host_id in host_ids:
        cluster.start_member(host_id, **kwargs)
    for host_id in host_ids:
        cluster.wait_joined(host_id)


def test_joined_up_down_after_kill_and_up_after_restart(cluster):
    start(cluster, 1, 2, 3)
    rec = EventRecorder()
    with servicegroup.API(cluster.make_conf()) as sg:
        sub = sg.watch('g', rec)
        for host_id in (1, 2, 3):
            joined = rec.wait('joined', 'member-%d' % host_id)
            assert joined.replay
            rec.wait('up', 'member-%d' % host_id)
        first_incarnation = joined.report.incarnation

        cluster.kill(2, signal.SIGKILL)
        down = rec.wait('down', 'member-2', timeout=DOWN + SLACK + 5)
        # The Down event carries the last report, whose wall-clock stamp
        # is the last beat (same machine, same clock).
        late = down.observed_wall - down.report.written_at
        assert DOWN - 0.05 <= late <= DOWN + SLACK, late
        assert 'no new report' in down.reason
        assert rec.kinds('member-1') == ['joined', 'up']
        assert rec.kinds('member-3') == ['joined', 'up']
        # Answers come from the monitor's memory meanwhile.
        assert not sg.service_is_up('g', 'member-2')
        assert sg.service_is_up('g', 'member-1')

        start(cluster, 2)
        rejoined = rec.wait('joined', 'member-2', count=2)
        assert not rejoined.replay
        rec.wait('up', 'member-2', count=2)
        assert rec.kinds('member-2') == ['joined', 'up', 'down', 'joined',
                                         'up']
        assert sg.service_is_up('g', 'member-2')
        # member-3 was never restarted: same incarnation all along.
        assert (sg.get_member('g', 'member-3').report.incarnation
                == first_incarnation)
        sub.cancel()
        assert sub.counters.coalesced == 0


def test_clean_stop_is_left_not_down(cluster):
    start(cluster, 1)
    rec = EventRecorder()
    with servicegroup.API(cluster.make_conf()) as sg:
        sg.watch('g', rec)
        rec.wait('up', 'member-1')
        assert cluster.stop_member(1) == 0
        left = rec.wait('left', 'member-1')
        assert left.clean
        time.sleep(DOWN + 0.3)
        assert rec.kinds('member-1') == ['joined', 'up', 'left']


def test_state_change_of_a_member_process(cluster, tmp_path):
    state_file = tmp_path / 'state'
    state_file.write_text('starting\n')
    start(cluster, 1, state_file=str(state_file))
    rec = EventRecorder()
    with servicegroup.API(cluster.make_conf()) as sg:
        sg.watch('g', rec)
        up = rec.wait('up', 'member-1')
        assert up.report.state == 'starting'
        state_file.write_text('enabled\n')
        change = rec.wait('state_changed', 'member-1')
        assert (change.old_state, change.new_state) == ('starting',
                                                        'enabled')
        assert sg.get_member('g', 'member-1').report.state == 'enabled'


def test_slow_subscriber_does_not_delay_a_fast_one(cluster):
    start(cluster, 1, 2, 3, 4)
    conf = cluster.make_conf()
    servicegroup.API(conf).close()   # registers the options
    conf.set_override('subscriber_queue_size', 2, group='heartbeat_monitor')
    slow = EventRecorder(delay=0.5)
    fast = EventRecorder()
    with servicegroup.API(conf) as sg:
        slow_sub = sg.watch('g', slow)
        sg.watch('g', fast)
        for host_id in (1, 2, 3, 4):
            fast.wait('up', 'member-%d' % host_id)
        for host_id in (1, 2):
            cluster.kill(host_id, signal.SIGKILL)
        for host_id in (1, 2):
            down = fast.wait('down', 'member-%d' % host_id,
                             timeout=DOWN + SLACK + 5)
            i = fast.events.index(down)
            late = fast.received[i] - down.report.written_at
            assert late <= DOWN + SLACK, late
        # 8 replay events plus ups and downs at 0.5 s each: the slow one
        # is far behind, and coalesces what it cannot take in time.
        assert len(slow.events) < len(fast.events)
        # ...but converges: its last word on every member is the truth.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
                len(slow_sub.queue) or slow_sub.queue.picture_remaining):
            time.sleep(0.1)
        time.sleep(0.6)
        last = {e.member_id: e.kind for e in slow.events}
        assert last == {'member-1': 'down', 'member-2': 'down',
                        'member-3': 'up', 'member-4': 'up'}
        assert slow_sub.counters.coalesced > 0
        assert slow_sub.counters.received == (slow_sub.counters.delivered
                                              + slow_sub.counters.coalesced)


def test_status_watch_streams_json_lines(cluster):
    start(cluster, 1)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'heartbeat.cmd.status', '--config-file',
         cluster.config_path, '--watch', '--json', '--group', 'g'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    try:
        lines = []

        def read_until(kind):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(json.loads(line))
                if lines[-1]['event'] == kind:
                    return lines[-1]
            raise AssertionError('no %s line; got %s, stderr %s'
                                 % (kind, lines, proc.stderr.read()))

        joined = read_until('joined')
        assert joined['replay'] is True
        assert joined['member_id'] == 'member-1'
        assert read_until('up')['replay'] is False
        cluster.kill(1, signal.SIGKILL)
        down = read_until('down')
        assert down['member_id'] == 'member-1'
        assert 'no new report' in down['reason']
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_watch_text_lines(cluster):
    start(cluster, 1, state='ready')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'heartbeat.cmd.status', '--config-file',
         cluster.config_path, '--watch'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    try:
        first = proc.stdout.readline()
        assert 'g/member-1  joined  state=ready' in first
        assert first.rstrip().endswith('[current]')
        second = proc.stdout.readline()
        assert 'g/member-1  up  state=ready' in second
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
