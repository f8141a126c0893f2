"""The monitor on a real redis: pushed changes and incremental reads.

Each test runs on a single redis-server and on a Redis Cluster of three
masters.
"""

import time
import uuid

import pytest

from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing.events import EventRecorder
from heartbeat.testing import servers

pytestmark = pytest.mark.redis

REPORT = 0.2


def make_conf(server, prefix, down, poll=None):
    nodes = server.hosts if isinstance(server, servers.RedisCluster) else []
    return config.make_conf(
        heartbeat={'driver': 'redis', 'report_interval': REPORT,
                   'service_down_time': down},
        heartbeat_redis={'url': server.url, 'prefix': prefix,
                         'cluster_nodes': nodes},
        heartbeat_monitor={} if poll is None else {'poll_interval': poll})


@pytest.fixture(params=['server', 'cluster'])
def server(request, tmp_path):
    kind = (servers.RedisServer if request.param == 'server'
            else servers.RedisCluster)
    with kind(str(tmp_path)) as srv:
        yield srv


def join(server, prefix, down, states):
    members = []
    for name in sorted(states):
        sg = servicegroup.API(make_conf(server, prefix, down))
        sg.join(name, 'compute', state_cb=lambda n=name: states[n])
        members.append(sg)
    return members


def test_pushed_state_change_arrives_long_before_the_next_poll(server):
    prefix = 'hb%s' % uuid.uuid4().hex[:8]
    # No poll and no deadline for 30 s: only a push can tell anything.
    states = {'m1': 'booting', 'm2': 'booting'}
    members = join(server, prefix, 30.0, states)
    rec = EventRecorder()
    try:
        with servicegroup.API(make_conf(server, prefix, 30.0,
                                        poll=30.0)) as sg:
            sg.watch('compute', rec)
            rec.wait('joined', 'm1', timeout=5)
            changed_at = time.monotonic()
            states['m1'] = 'enabled'
            change = rec.wait('state_changed', 'm1', timeout=5)
            assert time.monotonic() - changed_at < 5
            assert (change.old_state, change.new_state) == ('booting',
                                                            'enabled')
            # The same read saw m1's seq move: it is up as well.
            up = rec.wait('up', 'm1', timeout=1)
            assert up.observed_at <= change.observed_at
            assert sg.monitor.stats.pushes >= 1
            # m2 beat too (the same read may find it up), but its state
            # never changed.
            assert not any(e.member_id == 'm2' and e.kind == 'state_changed'
                           for e in rec.events)
    finally:
        for m in members:
            m.close()


def test_incremental_reads_detect_down_and_left(server):
    prefix = 'hb%s' % uuid.uuid4().hex[:8]
    down = 1.0
    members = join(server, prefix, down, {'m1': 'ok', 'm2': 'ok'})
    rec = EventRecorder()
    reads = []
    try:
        with servicegroup.API(make_conf(server, prefix, down)) as sg:
            real = sg.driver.snapshot

            def spy(group=None, since=None):
                snap = real(group, since)
                reads.append((since is not None, snap.complete))
                return snap

            sg.driver.snapshot = spy
            sg.watch('compute', rec)
            rec.wait('up', 'm1', timeout=5)
            rec.wait('up', 'm2', timeout=5)
            deadline = time.monotonic() + 5
            while len(reads) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            # After the first read, every read is incremental.
            assert reads[0] == (False, True)
            assert reads[1:] and all(r == (True, False) for r in reads[1:])

            stopped = time.time()
            members[0].reporter('m1', 'compute').stop(leave=False)
            went_down = rec.wait('down', 'm1', timeout=down + 5)
            # Its last beat came at most a report interval before.
            late = went_down.observed_wall - stopped
            assert down - REPORT - 0.05 <= late <= down + 1.0, late
            assert "backend's clock" in went_down.reason

            members[1].leave('m2', 'compute')
            left = rec.wait('left', 'm2', timeout=5)
            assert left.clean
            assert not any(e.kind == 'down' and e.member_id == 'm2'
                           for e in rec.events)
            assert not sg.service_is_up('compute', 'm1')
    finally:
        for m in members:
            m.close()
