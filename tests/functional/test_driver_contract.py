"""One contract, every driver, real backends.

The suite runs against the storage driver (a temporary metadata file), the
native redis driver (a real redis-server, and a real Redis Cluster of three
masters), and the tooz driver on a real ZooKeeper, a real etcd, a real
redis and a real memcached.  Markers select one backend: ``pytest
tests/functional -m redis``.
"""

from __future__ import annotations

from collections.abc import Iterator
import threading
import time
import uuid

from oslo_config import cfg
import pytest

from heartbeat import drivers
from heartbeat.drivers import base
from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat.drivers.storage import admin
from heartbeat import exception
from heartbeat.model import Report
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing import servers

BACKENDS = [
    pytest.param('storage', marks=pytest.mark.storage),
    pytest.param('redis', marks=pytest.mark.redis),
    pytest.param('redis-cluster', marks=pytest.mark.redis),
    pytest.param('tooz-zookeeper', marks=pytest.mark.zookeeper),
    pytest.param('tooz-etcd', marks=pytest.mark.etcd),
    pytest.param('tooz-redis', marks=pytest.mark.redis),
    pytest.param('tooz-memcached', marks=pytest.mark.memcached),
]

#: The server fixture each backend kind reads its URL from.
SERVER_FIXTURES = {
    'redis': 'redis_server',
    'redis-cluster': 'redis_cluster',
    'tooz-redis': 'redis_server',
    'tooz-zookeeper': 'zookeeper_server',
    'tooz-etcd': 'etcd_server',
    'tooz-memcached': 'memcached_server',
}

CLAIM_TIMEOUT = 0.5


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[servers.RedisServer]:
    with servers.RedisServer(str(tmp_path_factory.mktemp('redis'))) as srv:
        yield srv


@pytest.fixture(scope='module')
def redis_cluster(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[servers.RedisCluster]:
    with servers.RedisCluster(str(tmp_path_factory.mktemp('cluster'))) as cl:
        yield cl


@pytest.fixture(scope='module')
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[servers.ZooKeeperServer]:
    with servers.ZooKeeperServer(str(tmp_path_factory.mktemp('zk'))) as srv:
        yield srv


@pytest.fixture(scope='module')
def etcd_server(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[servers.EtcdServer]:
    with servers.EtcdServer(str(tmp_path_factory.mktemp('etcd'))) as srv:
        yield srv


@pytest.fixture(scope='module')
def memcached_server(tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[servers.MemcachedServer]:
    with servers.MemcachedServer(
            str(tmp_path_factory.mktemp('memcached'))) as srv:
        yield srv


class Backend:
    """Makes started drivers of one kind, and stops them at the end."""

    def __init__(self, kind: str, request: pytest.FixtureRequest,
                 workdir: str) -> None:
        self.kind = kind
        self.workdir = workdir
        self.namespace = 'hb%s' % uuid.uuid4().hex[:8]
        self.started: list[Driver] = []
        self.url = ''
        self.cluster_nodes: list[str] = []
        if kind in SERVER_FIXTURES:
            server = request.getfixturevalue(SERVER_FIXTURES[kind])
            self.url = server.url
            if kind == 'redis-cluster':
                self.cluster_nodes = server.hosts
        if kind == 'storage':
            admin.init_area(self.conf(), force=True)

    @property
    def driver_name(self) -> str:
        return self.kind.split('-')[0]

    def conf(self, host_id: int | None = None) -> cfg.ConfigOpts:
        conf = config.make_conf(heartbeat={
            'driver': self.driver_name, 'report_interval': 0.1,
            'service_down_time': 1.0})
        if self.kind == 'storage':
            conf.set_override('path', '%s/metadata' % self.workdir,
                              'heartbeat_storage')
            conf.set_override('max_hosts', 16, 'heartbeat_storage')
            conf.set_override('claim_timeout', CLAIM_TIMEOUT,
                              'heartbeat_storage')
            conf.set_override('host_id', host_id or 1, 'heartbeat')
        elif self.driver_name == 'redis':
            conf.set_override('url', self.url, 'heartbeat_redis')
            conf.set_override('cluster_nodes', self.cluster_nodes,
                              'heartbeat_redis')
            conf.set_override('prefix', self.namespace, 'heartbeat_redis')
            conf.set_override('claim_timeout', CLAIM_TIMEOUT,
                              'heartbeat_redis')
        else:
            conf.set_override('backend_url', self.url, 'heartbeat_tooz')
            conf.set_override('session_timeout', 2, 'heartbeat_tooz')
            conf.set_override('claim_timeout', CLAIM_TIMEOUT,
                              'heartbeat_tooz')
        return conf

    def driver(self, host_id: int | None = None) -> Driver:
        drv = drivers.load(self.conf(host_id), self.driver_name)
        drv.start()
        self.started.append(drv)
        return drv

    def close(self) -> None:
        stops = [threading.Thread(target=drv.stop) for drv in self.started]
        for thread in stops:
            thread.start()
        for thread in stops:
            thread.join()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest,
            tmp_path: object) -> Iterator[Backend]:
    be = Backend(request.param, request, str(tmp_path))
    yield be
    be.close()


def group_name() -> str:
    return 'g-%s' % uuid.uuid4().hex[:8]


def report(group: str, member_id: str, seq: int, inc: int = 7,
           **kw: object) -> Report:
    return Report(member_id=member_id, group=group, seq=seq, incarnation=inc,
                  written_at=time.time(), **kw)  # type: ignore[arg-type]


def find(drv: Driver, group: str | None, member_id: str) -> Report | None:
    for rep in drv.snapshot(group).reports:
        if rep.member_id == member_id and (group is None
                                           or rep.group == group):
            return rep
    return None


def test_published_report_is_read_back_whole(backend: Backend) -> None:
    group = group_name()
    writer, reader = backend.driver(1), backend.driver(2)
    writer.join(group, 'm1')
    writer.publish(report(group, 'm1', 1, state='ready', score=3400,
                          payload={'vm': 'up', 'n': [1, 2]}))
    got = find(reader, group, 'm1')
    assert got is not None
    assert (got.seq, got.incarnation) == (1, 7)
    assert (got.state, got.score) == ('ready', 3400)
    assert dict(got.payload) == {'vm': 'up', 'n': [1, 2]}
    assert not got.left
    assert find(reader, None, 'm1') is not None


def test_newest_report_wins(backend: Backend) -> None:
    group = group_name()
    writer, reader = backend.driver(1), backend.driver(2)
    writer.join(group, 'm1')
    for seq in (1, 2, 3):
        writer.publish(report(group, 'm1', seq, state='s%d' % seq))
    got = find(reader, group, 'm1')
    assert got is not None and (got.seq, got.state) == (3, 's3')


def test_members_of_two_groups_stay_apart(backend: Backend) -> None:
    g1, g2 = group_name(), group_name()
    a, b, reader = backend.driver(1), backend.driver(2), backend.driver(3)
    a.join(g1, 'a')
    a.publish(report(g1, 'a', 1))
    b.join(g2, 'b')
    b.publish(report(g2, 'b', 1))
    assert {r.member_id for r in reader.snapshot(g1).reports} == {'a'}
    assert {r.member_id for r in reader.snapshot(g2).reports} == {'b'}
    both = {(r.group, r.member_id) for r in reader.snapshot(None).reports}
    assert {(g1, 'a'), (g2, 'b')} <= both


def test_publish_without_join_is_refused(backend: Backend) -> None:
    drv = backend.driver(1)
    with pytest.raises(exception.NotJoined):
        drv.publish(report(group_name(), 'm1', 1))


def test_oversized_report_is_refused(backend: Backend) -> None:
    group = group_name()
    drv = backend.driver(1)
    drv.join(group, 'm1')
    with pytest.raises(exception.PayloadTooLarge):
        drv.publish(report(group, 'm1', 1,
                           payload={'x': 'y' * (drv.payload_limit + 1)}))


def test_leave_is_seen_as_a_clean_leave(backend: Backend) -> None:
    group = group_name()
    writer, reader = backend.driver(1), backend.driver(2)
    writer.join(group, 'm1')
    writer.publish(report(group, 'm1', 1))
    writer.leave(report(group, 'm1', 2, left=True))
    got = find(reader, group, 'm1')
    assert got is not None and got.left and got.seq == 2
    with pytest.raises(exception.NotJoined):
        writer.publish(report(group, 'm1', 3))


def _keep_beating(drv: Driver, group: str, member_id: str,
                  stop: threading.Event) -> threading.Thread:
    def run() -> None:
        seq = 1
        while not stop.wait(0.05):
            seq += 1
            drv.publish(report(group, member_id, seq))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_live_member_is_not_taken_over(backend: Backend) -> None:
    group = group_name()
    owner = backend.driver(1)
    owner.join(group, 'm1')
    owner.publish(report(group, 'm1', 1))
    stop = threading.Event()
    thread = _keep_beating(owner, group, 'm1', stop)
    try:
        intruder = backend.driver(1)
        with pytest.raises(exception.HostIdConflict):
            intruder.join(group, 'm1')
    finally:
        stop.set()
        thread.join()
    got = find(owner, group, 'm1')
    assert got is not None and got.incarnation == 7


def test_member_id_is_free_again_after_stop(backend: Backend) -> None:
    group = group_name()
    first = backend.driver(1)
    first.join(group, 'm1')
    first.publish(report(group, 'm1', 1, inc=1))
    first.stop()
    second = backend.driver(1)
    second.join(group, 'm1')
    second.publish(report(group, 'm1', 1, inc=2))
    got = find(second, group, 'm1')
    assert got is not None and got.incarnation == 2
    second.stop()
    second.stop()


def test_capabilities_match_behaviour(backend: Backend) -> None:
    group = group_name()
    writer, reader = backend.driver(1), backend.driver(2)
    writer.join(group, 'm1')
    writer.publish(report(group, 'm1', 1, state='a'))
    first = reader.snapshot(group)
    if Capability.INCREMENTAL not in reader.capabilities:
        assert first.complete
        return
    assert first.complete and first.cursor is not None
    told = Capability.SERVER_LIVENESS in reader.capabilities
    if told:
        assert first.beats is not None and set(first.beats.ages[group]) == {
            'm1'}
    else:
        assert first.beats is None
    writer.publish(report(group, 'm1', 2, state='a'))
    second = reader.snapshot(group, since=first.cursor)
    assert not second.complete
    if told:
        # A beat that changes nothing but the seq is no change.
        assert second.reports == ()
        assert second.beats is not None and second.beats.ages == {group: {}}
        writer.publish(report(group, 'm1', 3, state='b'))
        second = reader.snapshot(group, since=second.cursor)
        assert [(r.member_id, r.seq, r.state)
                for r in second.reports] == [('m1', 3, 'b')]
        assert second.beats is not None
        assert 0 <= second.beats.ages[group]['m1'] < 5
    else:
        assert [(r.member_id, r.seq) for r in second.reports] == [('m1', 2)]
    third = reader.snapshot(group, since=second.cursor)
    assert not third.complete and third.reports == () and third.gone == ()


def test_push_reports_state_changes(backend: Backend) -> None:
    group = group_name()
    writer, reader = backend.driver(1), backend.driver(2)
    if Capability.PUSH not in reader.capabilities:
        with pytest.raises(exception.CapabilityMissing):
            reader.listen(lambda group: None)
        return
    pushed: list[str] = []
    arrived = threading.Event()

    def on_change(changed: str) -> None:
        if changed == group:
            pushed.append(changed)
            arrived.set()

    cancel = reader.listen(on_change)
    writer.join(group, 'm1')
    writer.publish(report(group, 'm1', 1, state='a'))
    assert arrived.wait(5.0)
    cancel()
    count = len(pushed)
    writer.publish(report(group, 'm1', 2, state='b'))
    time.sleep(0.3)
    assert len(pushed) == count


def test_servicegroup_api_on_the_driver(backend: Backend) -> None:
    group = group_name()
    conf = backend.conf(1)
    drv = drivers.load(conf)
    with servicegroup.API(conf, driver=drv) as sg:
        sg.join('m1', group, state_cb=lambda: 'enabled')
        deadline = time.monotonic() + 5.0
        seen: set[int] = set()
        while time.monotonic() < deadline and len(seen) < 3:
            member = sg.get_member(group, 'm1')
            if member is not None:
                seen.add(member.report.seq)
            time.sleep(0.05)
        assert len(seen) >= 3, 'reports did not advance: %s' % seen
        assert sg.service_is_up(group, 'm1')
        member = sg.get_member(group, 'm1')
        assert member is not None and member.report.state == 'enabled'


def _flags_or_refusal(backend: Backend) -> tuple[Driver, Driver] | None:
    """Two drivers holding cluster flags; None once a refusal is checked."""
    writer, reader = backend.driver(1), backend.driver(2)
    if Capability.CLUSTER_FLAGS in writer.capabilities:
        return writer, reader
    for call in (lambda: writer.set_flag('maintenance', 'global'),
                 writer.get_flags):
        with pytest.raises(exception.CapabilityMissing) as err:
            call()
        assert repr(writer.name) in str(err.value)
        assert 'global maintenance' in str(err.value)
    return None


def test_cluster_flags_are_shared_replaced_and_kept(backend: Backend
                                                    ) -> None:
    pair = _flags_or_refusal(backend)
    if pair is None:
        return
    writer, reader = pair
    assert reader.get_flags() == {'maintenance': 'none'}
    writer.set_flag('maintenance', 'global')
    assert reader.get_flags() == {'maintenance': 'global'}
    reader.set_flag('owner_note', 'drain host-3 at 10:00')
    writer.set_flag('maintenance', 'none')
    expected = {'maintenance': 'none', 'owner_note': 'drain host-3 at 10:00'}
    assert reader.get_flags() == expected
    # Flags outlive the drivers that wrote them.
    writer.stop()
    reader.stop()
    assert backend.driver(3).get_flags() == expected


@pytest.mark.parametrize('name, value', [
    ('maintenance', 'sideways'), ('Maintenance', 'none'), ('', 'x'),
    ('9lives', 'x'), ('a' * 33, 'x'), ('note', 'x' * 65),
    ('note', 'tab\there'), ('note', 'caf\u00e9')])
def test_flags_out_of_bounds_are_refused(backend: Backend, name: str,
                                         value: str) -> None:
    pair = _flags_or_refusal(backend)
    if pair is None:
        return
    writer, reader = pair
    with pytest.raises(base.InvalidFlag):
        writer.set_flag(name, value)
    assert reader.get_flags() == {'maintenance': 'none'}


def test_flag_names_are_bounded(backend: Backend) -> None:
    pair = _flags_or_refusal(backend)
    if pair is None:
        return
    writer, reader = pair
    names = ['f%02d' % i for i in range(base.MAX_FLAGS - 1)]
    for name in names:
        writer.set_flag(name, 'v')
    with pytest.raises(base.InvalidFlag, match='most'):
        reader.set_flag('one_too_many', 'v')
    # Replacing a value needs no new name.
    reader.set_flag('f00', 'w')
    writer.set_flag('maintenance', 'global')
    flags = reader.get_flags()
    assert len(flags) == base.MAX_FLAGS
    assert (flags['f00'], flags['f01'], flags['maintenance']) == ('w', 'v',
                                                                  'global')
