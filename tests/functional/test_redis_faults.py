"""The redis driver through server faults: kill -9 and restart, SIGSTOP.

After each fault no member may be judged down (the outage is shorter than
service_down_time), and every member's newest state must be readable
again within one report_interval of the server being back.
"""

from __future__ import annotations

from collections.abc import Iterator
import threading
import time
import uuid

from oslo_config import cfg
import pytest

from heartbeat.drivers.redis import RedisDriver
from heartbeat import servicegroup
from heartbeat.testing import config
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
    assert snap.cursor.epoch != first.cursor.epoch


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
