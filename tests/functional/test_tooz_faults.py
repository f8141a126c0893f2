"""The tooz driver through backend faults, against real servers.

* a ZooKeeper session expired behind the member's back (its ephemeral
  membership vanishes while kazoo reconnects with a new session);
* an etcd lease that expired (tooz makes a new lease but does not re-create
  the member key, so the member would silently vanish);
* etcd stopped and started again.

After each: no member judged down (the faults are shorter than
service_down_time), the membership re-created, and the newest state
readable again within one report_interval after the backend is back.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import time
from typing import Any
import uuid

from oslo_config import cfg
import pytest

from heartbeat import conf as hb_conf
from heartbeat.drivers.tooz import ToozDriver
from heartbeat import servicegroup
from heartbeat.testing import servers

REPORT_INTERVAL = 0.5
DOWN_TIME = 4.0
# Reads are polled every 50 ms: allow one poll on top of report_interval.
VISIBLE_WITHIN = REPORT_INTERVAL + 0.1


def make_conf(url: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf([], project='heartbeat')
    conf.set_override('driver', 'tooz', 'heartbeat')
    conf.set_override('report_interval', REPORT_INTERVAL, 'heartbeat')
    conf.set_override('service_down_time', DOWN_TIME, 'heartbeat')
    conf.set_override('backend_url', url, 'heartbeat_tooz')
    conf.set_override('session_timeout', 2, 'heartbeat_tooz')
    conf.set_override('operation_timeout', 1.0, 'heartbeat_tooz')
    return conf


class Member:
    """One member with its own tooz driver, and a state to report."""

    def __init__(self, url: str, group: str, name: str) -> None:
        self.state = 'before'
        self.driver = ToozDriver(make_conf(url))
        self.api = servicegroup.API(self.driver.conf, driver=self.driver)
        self.api.join(name, group, state_cb=lambda: self.state)
        self.name = name

    @property
    def coordinator(self) -> Any:
        return self.driver._coordinators[self.name]

    def close(self) -> None:
        self.api.close()


def shows(state: str, names: set[str]) -> Any:
    def check(reports: dict[str, Any]) -> bool:
        return set(reports) == names and all(
            r.state == state for r in reports.values())
    return check


@pytest.fixture
def group() -> str:
    return 'g-%s' % uuid.uuid4().hex[:8]


@pytest.fixture(scope='module')
def zookeeper(tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[servers.ZooKeeperServer]:
    with servers.ZooKeeperServer(str(tmp_path_factory.mktemp('zk'))) as srv:
        yield srv


@pytest.fixture
def etcd(tmp_path: Any) -> Iterator[servers.EtcdServer]:
    with servers.EtcdServer(str(tmp_path)) as srv:
        yield srv


def _observer(url: str) -> ToozDriver:
    drv = ToozDriver(make_conf(url))
    drv.start()
    return drv


def _check_rejoin(url: str, group: str,
                  lose: Callable[[Member], None]) -> None:
    """``lose`` drops one member's membership behind its back; it rejoins."""
    members = [Member(url, group, n) for n in ('m1', 'm2')]
    observer = _observer(url)
    try:
        with servers.LivenessWatch(observer, group, DOWN_TIME) as watch:
            watch.wait_for(shows('before', {'m1', 'm2'}), 5.0)
            victim = members[0]
            victim.state = members[1].state = 'during'
            lose(victim)
            lost = time.monotonic()
            watch.wait_for(shows('during', {'m1', 'm2'}), 5.0)
            took = time.monotonic() - lost
            assert took <= VISIBLE_WITHIN, took
            assert victim.driver.rejoins >= 1
            assert watch.downs == []
    finally:
        for m in members:
            m.close()
        observer.stop()


@pytest.mark.zookeeper
def test_expired_zookeeper_session_rejoins(
        zookeeper: servers.ZooKeeperServer, group: str) -> None:
    _check_rejoin(zookeeper.url, group, lambda victim: (
        zookeeper.expire_session(victim.coordinator._coord.client_id)))


@pytest.mark.etcd
def test_expired_etcd_lease_rejoins(etcd: servers.EtcdServer,
                                    group: str) -> None:
    _check_rejoin(etcd.url, group, lambda victim: (
        etcd.revoke_lease(victim.coordinator._membership_lease.id)))


@pytest.mark.etcd
def test_etcd_stop_and_start(etcd: servers.EtcdServer, group: str) -> None:
    members = [Member(etcd.url, group, n) for n in ('m1', 'm2')]
    observer = _observer(etcd.url)
    try:
        with servers.LivenessWatch(observer, group, DOWN_TIME) as watch:
            watch.wait_for(shows('before', {'m1', 'm2'}), 5.0)
            for m in members:
                m.state = 'during'
            etcd.stop()
            time.sleep(1.0)
            etcd.start()
            elapsed = watch.wait_for(shows('during', {'m1', 'm2'}), 5.0)
            assert watch.failed_reads > 0
            assert elapsed <= VISIBLE_WITHIN, elapsed
            assert watch.downs == []
    finally:
        for m in members:
            m.close()
        observer.stop()
