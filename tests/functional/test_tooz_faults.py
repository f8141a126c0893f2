"""The tooz driver through backend faults, against real servers.

* a ZooKeeper session expired behind the member's back (its ephemeral
  membership vanishes while kazoo reconnects with a new session);
* an etcd lease that expired (tooz makes a new lease but does not re-create
  the member key, so the member would silently vanish);
* etcd stopped and started again;
* memcached killed and started again: every group and membership is lost.

After each: no member judged down (the faults are shorter than
service_down_time), the membership re-created, and the newest state
readable again within one report_interval after the backend is back (a
few seconds on memcached, where every member rewrites one group item).

Also, on memcached: a live member keeps its membership at the shortest
session_timeout (expiry times there are whole seconds), and a join answered
after operation_timeout that went through is the member's own, not a
conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import threading
import time
from typing import Any
import uuid

from kazoo.protocol.states import KazooState
from oslo_config import cfg
import pytest

from heartbeat.drivers.tooz import ToozDriver
from heartbeat import exception
from heartbeat.model import Report
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing.events import EventRecorder
from heartbeat.testing import servers

REPORT_INTERVAL = 0.5
DOWN_TIME = 4.0
# Reads are polled every 50 ms: allow one poll on top of report_interval.
VISIBLE_WITHIN = REPORT_INTERVAL + 0.1
OPERATION_TIMEOUT = 1.0
# A memcached that restarted empty has every member rewrite the same group
# item at once; tooz retries a compare-and-set refused by a concurrent one
# a second later (and the member may give up waiting first and adopt the
# join on its next beat), so allow a few such rounds, well below DOWN_TIME.
MEMCACHED_VISIBLE_WITHIN = 3.0


def make_conf(url: str, session_timeout: int = 2) -> cfg.ConfigOpts:
    return config.make_conf(
        heartbeat={'driver': 'tooz', 'report_interval': REPORT_INTERVAL,
                   'service_down_time': DOWN_TIME},
        heartbeat_tooz={'backend_url': url,
                        'session_timeout': session_timeout,
                        'operation_timeout': OPERATION_TIMEOUT})


class Member:
    """One member with its own tooz driver, and a state to report."""

    def __init__(self, url: str, group: str, name: str,
                 session_timeout: int = 2) -> None:
        self.state = 'before'
        self.driver = ToozDriver(make_conf(url, session_timeout))
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


@pytest.fixture
def memcached(tmp_path: Any) -> Iterator[servers.MemcachedServer]:
    with servers.MemcachedServer(str(tmp_path)) as srv:
        yield srv


def _observer(url: str) -> ToozDriver:
    drv = ToozDriver(make_conf(url))
    drv.start()
    return drv


def _check_rejoin(url: str, group: str,
                  lose: Callable[[Member], Callable[[], float | None]]
                  ) -> None:
    """``lose`` drops one member's membership behind its back; it rejoins.

    ``lose`` returns when the membership is gone, with a function telling
    from when on the member could know it (None: it was never told).
    """
    members = [Member(url, group, n) for n in ('m1', 'm2')]
    observer = _observer(url)
    try:
        with servers.LivenessWatch(observer, group, DOWN_TIME) as watch:
            watch.wait_for(shows('before', {'m1', 'm2'}), 5.0)
            victim = members[0]
            known = lose(victim)
            # Set after the loss: a report written before it would show
            # the new state without a rejoin.
            victim.state = members[1].state = 'during'
            watch.wait_for(shows('during', {'m1', 'm2'}), 5.0)
            shown = time.monotonic()
            since = known()
            assert since is not None, 'the member was never told'
            took = shown - since
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
    def expire(victim: Member) -> Callable[[], float | None]:
        # The expiry attaches a second client to the session, and the
        # member's client may take it back a few times first; each time
        # the server drops the connection it held, which the member may
        # only notice when its pings go unanswered.  How long kazoo takes
        # to hear that its session ended is kazoo's and the server's; the
        # driver's part starts when it is told (LOST).
        client = victim.coordinator._coord
        told: list[float] = []

        def listener(state: str) -> None:
            if state == KazooState.LOST:
                told.append(time.monotonic())

        client.add_listener(listener)
        zookeeper.expire_session(client.client_id)
        gone = time.monotonic()
        return lambda: max(gone, told[0]) if told else None

    _check_rejoin(zookeeper.url, group, expire)


@pytest.mark.etcd
def test_expired_etcd_lease_rejoins(etcd: servers.EtcdServer,
                                    group: str) -> None:
    def revoke(victim: Member) -> Callable[[], float | None]:
        etcd.revoke_lease(victim.coordinator._membership_lease.id)
        gone = time.monotonic()
        return lambda: gone

    _check_rejoin(etcd.url, group, revoke)


def _check_outage(server: servers.EtcdServer | servers.MemcachedServer,
                  group: str, hard: bool,
                  visible_within: float = VISIBLE_WITHIN) -> list[int]:
    """The server is down for a second; every member is back in time.

    Returns how often each member rejoined.
    """
    members = [Member(server.url, group, n) for n in ('m1', 'm2')]
    observer = _observer(server.url)
    try:
        with servers.LivenessWatch(observer, group, DOWN_TIME) as watch:
            watch.wait_for(shows('before', {'m1', 'm2'}), 5.0)
            for m in members:
                m.state = 'during'
            if hard:
                server.kill()
            else:
                server.stop()
            time.sleep(1.0)
            server.start()
            elapsed = watch.wait_for(shows('during', {'m1', 'm2'}), 5.0)
            assert watch.failed_reads > 0
            assert elapsed <= visible_within, elapsed
            assert watch.downs == []
        return [m.driver.rejoins for m in members]
    finally:
        for m in members:
            m.close()
        observer.stop()


@pytest.mark.etcd
def test_etcd_stop_and_start(etcd: servers.EtcdServer, group: str) -> None:
    _check_outage(etcd, group, hard=False)


@pytest.mark.memcached
def test_memcached_kill_and_start(memcached: servers.MemcachedServer,
                                  group: str) -> None:
    # memcached came back empty: each member found its membership gone.
    rejoins = _check_outage(memcached, group, hard=True,
                            visible_within=MEMCACHED_VISIBLE_WITHIN)
    assert min(rejoins) >= 1


@pytest.mark.memcached
def test_memcached_keeps_live_members_at_the_shortest_session(
        memcached: servers.MemcachedServer, group: str) -> None:
    members = [Member(memcached.url, group, n, session_timeout=1)
               for n in ('m1', 'm2')]
    observer = _observer(memcached.url)
    try:
        missing = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            seen = {r.member_id for r in observer.snapshot(group).reports}
            if seen != {'m1', 'm2'}:
                missing.append(seen)
            time.sleep(0.05)
        assert missing == []
        assert [m.driver.rejoins for m in members] == [0, 0]
    finally:
        for m in members:
            m.close()
        observer.stop()


def _publish_until_accepted(drv: ToozDriver, group: str, name: str,
                            seq: int, timeout: float = 10.0) -> None:
    """Publish until the backend takes it; HostIdConflict is not retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            drv.publish(Report(member_id=name, group=group, seq=seq,
                               incarnation=1, written_at=time.time()))
            return
        except exception.HostIdConflict:
            raise
        except exception.BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.memcached
def test_memcached_join_answered_too_late_is_the_members_own(
        memcached: servers.MemcachedServer, group: str) -> None:
    drv = _observer(memcached.url)
    drv.join(group, 'm1')
    coord = drv._coordinators['m1']
    join_group = coord.join_group
    # A safety net only: the server is resumed once the member gave up.
    resume = threading.Timer(10 * OPERATION_TIMEOUT, memcached.resume)

    def join_to_a_stalled_server(*args: Any, **kwargs: Any) -> Any:
        # Once: the join goes out to a server that answers only after the
        # member stopped waiting for it.
        coord.join_group = join_group
        memcached.pause()
        resume.start()
        return join_group(*args, **kwargs)

    coord.join_group = join_to_a_stalled_server
    try:
        with pytest.raises(exception.BackendError, match='tooz join'):
            drv.publish(Report(member_id='m1', group=group, seq=1,
                               incarnation=1, written_at=time.time()))
        # The join the member stopped waiting for is answered now.
        resume.cancel()
        memcached.resume()
        _publish_until_accepted(drv, group, 'm1', 2)
        got = {r.member_id: r.seq for r in drv.snapshot(group).reports}
        assert got == {'m1': 2}
    finally:
        resume.cancel()
        memcached.resume()
        drv.stop()


@pytest.mark.zookeeper
def test_expired_zookeeper_sessions_are_an_outage_not_a_leave(
        zookeeper: servers.ZooKeeperServer, group: str) -> None:
    members = [Member(zookeeper.url, group, n) for n in ('m1', 'm2')]
    rec = EventRecorder()
    try:
        with servicegroup.API(make_conf(zookeeper.url)) as sg:
            sg.watch(group, rec)
            for m in members:
                rec.wait('up', m.name, 10.0)
            seqs = {m.member_id: m.report.seq for m in sg.get_all(group)}
            for m in members:
                zookeeper.expire_session(m.coordinator._coord.client_id)
            lost = time.monotonic()

            def back() -> bool:
                now = {m.member_id: m.report.seq for m in sg.get_all(group)}
                return (all(m.driver.rejoins >= 1 for m in members)
                        and all(now.get(k, 0) > v + 1
                                for k, v in seqs.items()))

            while not back():
                assert time.monotonic() - lost < DOWN_TIME, 'not back'
                time.sleep(0.05)
            wrong = [(e.kind, e.member_id) for e in rec.events
                     if e.kind in ('left', 'down')]
            assert wrong == []
            assert all(m.up for m in sg.get_all(group))
    finally:
        for m in members:
            m.close()


@pytest.mark.zookeeper
def test_one_slow_member_does_not_delay_the_others(
        zookeeper: servers.ZooKeeperServer, group: str) -> None:
    drv = _observer(zookeeper.url)
    try:
        for name in ('slow', 'fast'):
            drv.join(group, name)
            drv.publish(Report(member_id=name, group=group, seq=1,
                               incarnation=1))
        coord = drv._coordinators['slow']
        update = coord.update_capabilities
        entered = threading.Event()

        def stuck(*args: Any, **kwargs: Any) -> Any:
            # The slow member's backend call hangs for a whole operation
            # timeout, as behind a stalled connection.
            entered.set()
            time.sleep(3 * OPERATION_TIMEOUT)
            return update(*args, **kwargs)

        coord.update_capabilities = stuck
        slow = threading.Thread(target=drv.publish, args=(Report(
            member_id='slow', group=group, seq=2, incarnation=1),))
        slow.start()
        assert entered.wait(5.0)
        took = []
        for seq in range(2, 7):
            start = time.monotonic()
            drv.publish(Report(member_id='fast', group=group, seq=seq,
                               incarnation=1))
            took.append(time.monotonic() - start)
        assert slow.is_alive(), 'the slow call was not slow'
        assert max(took) < 0.5, took
        slow.join()
    finally:
        drv.stop()


@pytest.mark.zookeeper
def test_a_timeout_says_which_operation_and_why(
        zookeeper: servers.ZooKeeperServer, group: str) -> None:
    drv = _observer(zookeeper.url)
    try:
        drv.join(group, 'm1')
        drv.publish(Report(member_id='m1', group=group, seq=1,
                           incarnation=1))
        with zookeeper.paused():
            with pytest.raises(exception.BackendError) as info:
                drv.publish(Report(member_id='m1', group=group, seq=2,
                                   incarnation=1))
        # kazoo's errors here carry no text: the cause chain names it.
        text = str(info.value)
        assert 'tooz update on the zookeeper backend failed: ' in text, text
        assert ('ConnectionLoss' in text
                or 'operation_timeout' in text), text
    finally:
        drv.stop()
