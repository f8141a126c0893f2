"""The redis driver through server faults: kill -9 and restart, SIGSTOP.

After each fault no member may be judged down (the outage is shorter than
service_down_time), and every member's newest state must be readable
again within one report_interval of the server being back.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import threading
import time
import uuid

from oslo_config import cfg
import pytest

from heartbeat.drivers.redis.driver import REPUBLISH_BATCH
from heartbeat.drivers.redis import RedisDriver
from heartbeat.exception import HeartbeatError
from heartbeat.exception import PayloadTooLarge
from heartbeat.model import Report
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing.events import EventRecorder
from heartbeat.testing import servers

pytestmark = pytest.mark.redis

REPORT_INTERVAL = 0.5
DOWN_TIME = 3.0
OUTAGE = 1.0
# Reads are polled every 50 ms: allow one poll on top of report_interval.
VISIBLE_WITHIN = REPORT_INTERVAL + 0.1


def make_conf(url: str, prefix: str) -> cfg.ConfigOpts:
    return config.make_conf(
        heartbeat={'driver': 'redis', 'report_interval': REPORT_INTERVAL,
                   'service_down_time': DOWN_TIME},
        heartbeat_redis={'url': url, 'prefix': prefix,
                         'socket_timeout': 0.3, 'reconnect_min_delay': 0.05,
                         'reconnect_max_delay': 0.2})


class Cluster:
    """Two members, each with its own driver, plus an observer driver."""

    def __init__(self, server: servers.RedisServer) -> None:
        self.server = server
        self.prefix = 'hb%s' % uuid.uuid4().hex[:8]
        self.group = 'compute'
        self.state = 'before'
        self.apis: list[servicegroup.API] = []
        for name in ('m1', 'm2'):
            conf = make_conf(server.url, self.prefix)
            api = servicegroup.API(conf, driver=RedisDriver(conf))
            api.join(name, self.group, state_cb=lambda: self.state)
            self.apis.append(api)
        self.observer = RedisDriver(make_conf(server.url, self.prefix))
        self.observer.start()

    def close(self) -> None:
        for api in self.apis:
            api.close()
        self.observer.stop()

    def all_show(self, state: str) -> object:
        def check(reports: dict[str, object]) -> bool:
            return (set(reports) == {'m1', 'm2'} and all(
                getattr(r, 'state', None) == state
                for r in reports.values()))
        return check


@pytest.fixture
def server(tmp_path: object) -> Iterator[servers.RedisServer]:
    with servers.RedisServer(str(tmp_path)) as srv:
        yield srv


@pytest.fixture
def cluster(server: servers.RedisServer) -> Iterator[Cluster]:
    c = Cluster(server)
    yield c
    c.close()


def _check_fault(cluster: Cluster, fault: str) -> None:
    with servers.LivenessWatch(cluster.observer, cluster.group,
                               DOWN_TIME) as watch:
        watch.wait_for(cluster.all_show('before'), 5.0)
        cluster.state = 'during'
        if fault == 'kill':
            cluster.server.kill()
            time.sleep(OUTAGE)
            cluster.server.start()
        else:
            with cluster.server.paused():
                time.sleep(OUTAGE)
        elapsed = watch.wait_for(cluster.all_show('during'), 5.0)
        assert watch.failed_reads > 0, 'the fault did not reach the reader'
        assert elapsed <= VISIBLE_WITHIN, (
            'newest state visible %.2fs after the server came back '
            '(report_interval %.1fs)' % (elapsed, REPORT_INTERVAL))
        assert watch.downs == [], 'members judged down: %s' % watch.downs


def test_kill_and_restart_loses_nothing_visible(cluster: Cluster) -> None:
    _check_fault(cluster, 'kill')
    reconnects = [api.driver.reconnects  # type: ignore[attr-defined]
                  for api in cluster.apis]
    assert all(n >= 1 for n in reconnects)


def test_sigstop_and_sigcont(cluster: Cluster) -> None:
    _check_fault(cluster, 'pause')


def test_incremental_reader_survives_data_loss(cluster: Cluster) -> None:
    reader = cluster.observer
    first = reader.snapshot(cluster.group)
    assert {r.member_id for r in first.reports} == {'m1', 'm2'}
    cluster.server.kill()
    cluster.server.start()
    deadline = time.monotonic() + 5.0
    while True:
        snap = reader.snapshot(cluster.group, since=first.cursor)
        if {r.member_id for r in snap.reports} == {'m1', 'm2'}:
            break
        assert time.monotonic() < deadline, snap
        time.sleep(0.05)
    # The dataset was lost, so the reader was given everything.
    assert snap.complete
    group = cluster.group
    assert snap.cursor.epochs[group] != first.cursor.epochs[group]


def test_push_resumes_after_restart(cluster: Cluster) -> None:
    pushed = threading.Event()
    cancel = cluster.observer.listen(
        lambda group: pushed.set() if group == cluster.group else None)
    try:
        cluster.server.kill()
        pushed.clear()
        cluster.server.start()
        back = time.monotonic()
        assert pushed.wait(5.0), 'no push after the server came back'
        assert time.monotonic() - back <= VISIBLE_WITHIN
        pushed.clear()
        cluster.state = 'after'
        assert pushed.wait(5.0), 'a state change after the restart was ' \
            'not pushed'
    finally:
        cancel()


# More members than one republish batch: the reconnect sends them in
# several pipelined round trips (about 0.1 s per batch here), and the
# observer reads them all again; they must be back well before their
# deadline.
@pytest.mark.parametrize('count, visible_within', [
    (200, VISIBLE_WITHIN), (2 * REPUBLISH_BATCH + 500, DOWN_TIME / 2)])
def test_data_loss_is_an_outage_not_a_leave(
        server: servers.RedisServer, count: int,
        visible_within: float) -> None:
    # Members on the default reconnect backoff: the reconnect thread must
    # still bring them back within one report_interval.
    prefix = 'hb%s' % uuid.uuid4().hex[:8]
    members = ['m%04d' % i for i in range(count)]
    conf = config.make_conf(
        heartbeat={'driver': 'redis', 'report_interval': REPORT_INTERVAL,
                   'service_down_time': DOWN_TIME},
        heartbeat_redis={'url': server.url, 'prefix': prefix})
    publisher = RedisDriver(conf)
    publisher.start()
    publisher.join_many('compute', members)
    stop = threading.Event()
    seq = [0]

    def beat() -> None:
        while not stop.wait(REPORT_INTERVAL):
            seq[0] += 1
            try:
                publisher.publish_many([
                    Report(member_id=m, group='compute', seq=seq[0],
                           incarnation=1, state='ok') for m in members])
            except HeartbeatError:
                pass

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    rec = EventRecorder()
    try:
        with servicegroup.API(config.make_conf(
                heartbeat={'driver': 'redis',
                           'report_interval': REPORT_INTERVAL,
                           'service_down_time': DOWN_TIME},
                heartbeat_redis={'url': server.url, 'prefix': prefix,
                                 'socket_timeout': 0.3})) as sg:
            sg.watch('compute', rec)
            for m in members:
                rec.wait('up', m, 10.0)
            server.kill()
            killed_at_seq = seq[0]
            time.sleep(OUTAGE)
            server.start()
            back = time.monotonic()

            def all_back() -> bool:
                # The observer read every member's report again, one newer
                # than any before the server lost its data.  (On redis a
                # live member's last_change moves only when a read tells
                # of it, so the seq is what shows the report is new; the
                # republish may even come before server.start() returns.)
                current = {m.member_id: m for m in sg.get_all('compute')}
                return all(m in current
                           and current[m].report.seq > killed_at_seq
                           for m in members)

            while not all_back():
                assert time.monotonic() - back < 5.0, 'members not back'
                time.sleep(0.02)
            elapsed = time.monotonic() - back
            assert elapsed <= visible_within, elapsed
            kinds = {e.kind for e in rec.events}
            assert 'left' not in kinds and 'down' not in kinds, [
                (e.kind, e.member_id) for e in rec.events
                if e.kind in ('left', 'down')][:5]
            assert all(m.up for m in sg.get_all('compute'))
            assert publisher.republish_errors == 0
    finally:
        stop.set()
        beater.join()
        publisher.stop()


def test_an_oversized_report_never_stops_the_reconnect(
        cluster: Cluster) -> None:
    api = cluster.apis[0]
    driver = api.driver
    assert isinstance(driver, RedisDriver)
    good = Report(member_id='solo', group='big', seq=1, incarnation=7,
                  state='good')
    driver.join('big', 'solo')
    driver.publish(good)
    cluster.server.kill()
    with pytest.raises(HeartbeatError):
        driver.publish(dataclasses.replace(good, seq=2))
    assert driver.disconnected.is_set()
    huge = dataclasses.replace(good, seq=3, payload={
        'blob': 'x' * (driver.payload_limit + 1)})
    with pytest.raises(PayloadTooLarge):
        driver.publish(huge)
    cluster.server.start()
    deadline = time.monotonic() + 5.0
    while driver.disconnected.is_set():
        assert time.monotonic() < deadline, 'the reconnect thread died'
        time.sleep(0.02)
    (solo,) = [r for r in cluster.observer.snapshot('big').reports]
    assert (solo.seq, solo.state) == (2, 'good')
    driver.publish(dataclasses.replace(good, seq=4))
    (solo,) = [r for r in cluster.observer.snapshot('big').reports]
    assert solo.seq == 4
