"""Pure parts of the tooz driver: reports as capabilities."""

from __future__ import annotations

from importlib import metadata
import urllib.parse

from kazoo import exceptions as kazoo_exceptions
from oslo_config import cfg
import pytest
import tooz
from tooz import coordination
from tooz import utils as tooz_utils

from heartbeat import conf as hb_conf
from heartbeat.drivers.base import Capability
from heartbeat.drivers import tooz as tooz_driver
from heartbeat import exception
from heartbeat.model import InvalidRecord
from heartbeat.model import Report


def test_capabilities_round_trip() -> None:
    rep = Report(member_id='m1', group='g', seq=3, incarnation=4,
                 state='ready', score=10, payload={'a': [1]},
                 written_at=1.5, left=True)
    got = tooz_driver.from_capabilities(
        'g', 'm1', tooz_driver.to_capabilities(rep))
    assert isinstance(got, Report)
    assert (got.token, got.state, got.score, got.left) == ((4, 3), 'ready',
                                                           10, True)
    assert dict(got.payload) == {'a': [1]}
    assert got.location == 'tooz g'


def test_member_without_capabilities_is_not_a_report() -> None:
    assert tooz_driver.from_capabilities('g', 'm1', None) is None


@pytest.mark.parametrize('caps', [b'raw', {'seq': 1}, {'seq': 'x', 'inc': 1},
                                  {'seq': 1, 'inc': 1, 'data': 'no'}])
def test_foreign_capabilities_are_invalid(caps: object) -> None:
    got = tooz_driver.from_capabilities('g', 'm1', caps)
    assert isinstance(got, InvalidRecord)
    assert got.location == 'tooz g/m1' and got.key == ('g', 'm1')


def _driver(url: str) -> tooz_driver.ToozDriver:
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf([])
    conf.set_override('backend_url', url, 'heartbeat_tooz')
    return tooz_driver.ToozDriver(conf)


def test_no_push_is_claimed_and_backends_declare_what_they_offer() -> None:
    assert Capability.PUSH not in tooz_driver.ToozDriver.capabilities
    zk = _driver('zookeeper://127.0.0.1:2181').backend_capabilities
    etcd = _driver('etcd3+http://127.0.0.1:2379').backend_capabilities
    files = _driver('file:///tmp/x').backend_capabilities
    assert zk == {Capability.SERVER_TTL}
    assert etcd == {Capability.SERVER_TTL, Capability.BATCHED_READ}
    assert files == frozenset()
    for caps in (zk, etcd, files):
        assert Capability.PUSH not in caps


def _updates_capabilities(scheme: str) -> bool:
    """Whether tooz's ``scheme`` backend implements update_capabilities."""
    found = metadata.entry_points(group='tooz.backends', name=scheme)
    assert found, 'tooz has no %s backend' % scheme
    backend = next(iter(found)).load()
    base = coordination.CoordinationDriver.update_capabilities
    return backend.update_capabilities is not base


@pytest.mark.parametrize('scheme', [*tooz_driver.BACKEND_CAPABILITIES,
                                    'file'])
def test_declared_backends_match_what_tooz_implements(scheme: str) -> None:
    # A backend that cannot update capabilities cannot carry a second
    # report; one that can must not be refused.
    supported = scheme not in tooz_driver.UNSUPPORTED
    assert _updates_capabilities(scheme) is supported
    assert (scheme in tooz_driver.BACKEND_CAPABILITIES) is supported


def test_a_backend_that_cannot_carry_reports_is_refused_at_start() -> None:
    drv = _driver('file:///nonexistent/heartbeat')
    with pytest.raises(exception.ConfigError,
                       match="file backend cannot carry heartbeat reports"):
        drv.start()


def test_backend_url_is_secret() -> None:
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    assert conf._get_opt_info('backend_url', 'heartbeat_tooz')['opt'].secret


@pytest.mark.parametrize('url, expected', [
    ('zookeeper://127.0.0.1:2181',
     {'membership_timeout': '30', 'timeout': '30',
      'hosts': ','.join(['127.0.0.1:2181'] * 11)}),
    ('etcd3+http://127.0.0.1:2379', {'membership_timeout': '30'}),
    ('redis://127.0.0.1:6379', {'membership_timeout': '30'}),
    # One more second for memcached's whole-second expiry; the socket
    # timeout follows operation_timeout, rounded up.
    ('memcached://127.0.0.1:11211',
     {'membership_timeout': '31', 'timeout': '3'}),
    ('memcached://127.0.0.1:11211?timeout=7', {'membership_timeout': '31'}),
])
def test_coordinator_options(url: str, expected: dict[str, str]) -> None:
    assert tooz_driver.coordinator_options(url, 30, 2.5) == expected


def test_zookeeper_reconnects_no_slower_than_half_a_beat() -> None:
    options = tooz_driver.coordinator_options('zookeeper://h:2181', 30, 2.5,
                                              reconnect_delay=0.25)
    retry = options['connection_retry']
    assert retry['max_delay'] == 0.25 and retry['max_tries'] == -1
    # Not for the other backends, which reconnect on each request.
    assert 'connection_retry' not in tooz_driver.coordinator_options(
        'etcd3+http://h:2379', 30, 2.5, reconnect_delay=0.25)


@pytest.mark.parametrize('url, operation_timeout, entries', [
    # kazoo gives one handshake session_timeout / entries: listing the
    # servers again bounds it by operation_timeout.
    ('zookeeper://h:2181', 2.5, 12),
    ('zookeeper://h:2181', 30, 1),
    ('zookeeper://a:2181,b:2181,c:2181', 2.5, 4),
    ('kazoo://a:2181?hosts=b:2181', 5, 3),
])
def test_zookeeper_handshake_waits_no_longer_than_an_operation(
        url: str, operation_timeout: float, entries: int) -> None:
    options = tooz_driver.coordinator_options(url, 30, operation_timeout)
    netloc = urllib.parse.urlsplit(url).netloc
    hosts = ','.join([netloc, options.get('hosts', '')]).strip(',').split(',')
    assert len(hosts) == entries * len(set(hosts))
    assert 30 / len(hosts) <= max(operation_timeout, 30 / len(set(hosts)))


def _translated(cause: Exception) -> exception.BackendError:
    """``cause`` as the driver sees it: kazoo's, then tooz's, then ours."""
    try:
        try:
            try:
                raise cause
            except Exception as err:
                tooz_utils.raise_with_cause(tooz.ToozError, str(err),
                                            cause=err)
        except tooz.ToozError as err:
            raise exception.BackendError('tooz update failed') from err
    except exception.BackendError as err:
        return err
    raise AssertionError('not raised')


def test_a_write_failed_by_the_end_of_the_session_is_told_apart() -> None:
    # kazoo fails the requests in flight with SessionExpiredError when it
    # learns its session ended: the member rejoins in the same beat.
    assert tooz_driver.session_ended(
        _translated(kazoo_exceptions.SessionExpiredError()))
    # A lost connection keeps the session: the beat fails, nothing else.
    assert not tooz_driver.session_ended(
        _translated(kazoo_exceptions.ConnectionLoss()))
    assert not tooz_driver.session_ended(
        _translated(coordination.OperationTimedOut('late')))
    # A client closed by stop() says so with a subclass: not a lost session.
    assert not tooz_driver.session_ended(
        _translated(kazoo_exceptions.ConnectionClosedError('closed')))


class _Result:
    """A tooz async result: a value, or the error tooz raises for it."""

    def __init__(self, value: object = None,
                 cause: Exception | None = None) -> None:
        self.value, self.cause = value, cause

    def get(self, timeout: float | None = None) -> object:
        if self.cause is not None:
            tooz_utils.raise_with_cause(tooz.ToozError, str(self.cause),
                                        cause=self.cause)
        return self.value


class _Coordinator:
    """A ZooKeeper member's tooz coordinator whose answers are scripted."""

    def __init__(self, updates: list[Exception | None],
                 joins: list[Exception | None]) -> None:
        self.updates, self.joins = updates, joins
        self.calls: list[str] = []

    def update_capabilities(self, group: bytes, caps: object) -> _Result:
        self.calls.append('update')
        return _Result(cause=self.updates.pop(0))

    def create_group(self, group: bytes) -> _Result:
        self.calls.append('create')
        return _Result()

    def join_group(self, group: bytes, capabilities: object) -> _Result:
        self.calls.append('join')
        return _Result(cause=self.joins.pop(0))

    def heartbeat(self) -> float:
        self.calls.append('heartbeat')
        return 1.0


def _zookeeper_member(coord: _Coordinator) -> tuple[
        tooz_driver.ToozDriver, Report]:
    drv = _driver('zookeeper://127.0.0.1:2181')
    drv._members[('g', 'm1')] = tooz_driver._Member(coord, in_group=True)
    return drv, Report(member_id='m1', group='g', seq=3, incarnation=4,
                       state='ready')


def test_a_beat_failed_by_the_end_of_the_session_rejoins_at_once() -> None:
    expired = kazoo_exceptions.SessionExpiredError()
    # kazoo refuses the first rejoin too, until its new session starts.
    coord = _Coordinator(updates=[expired], joins=[expired, None])
    drv, report = _zookeeper_member(coord)
    drv.publish(report)
    # No heartbeat on ZooKeeper: a read without a timeout there.
    assert coord.calls == ['update', 'create', 'join', 'create', 'join']
    member = drv._members[('g', 'm1')]
    assert member.in_group and not member.join_in_doubt
    assert drv.rejoins == 1


def test_a_lost_connection_fails_the_beat_and_keeps_the_membership() -> None:
    coord = _Coordinator(updates=[kazoo_exceptions.ConnectionLoss()],
                         joins=[])
    drv, report = _zookeeper_member(coord)
    with pytest.raises(exception.BackendError, match='ConnectionLoss'):
        drv.publish(report)
    assert coord.calls == ['update']
    assert drv._members[('g', 'm1')].in_group and drv.rejoins == 0


def test_a_rejoin_refused_too_long_is_retried_next_beat() -> None:
    expired = kazoo_exceptions.SessionExpiredError()
    coord = _Coordinator(updates=[expired], joins=[expired] * 100 + [None])
    drv, report = _zookeeper_member(coord)
    drv.conf.set_override('operation_timeout', 0.2, 'heartbeat_tooz')
    with pytest.raises(exception.BackendError, match='SessionExpired'):
        drv.publish(report)
    member = drv._members[('g', 'm1')]
    # Not in doubt: a join failed by the end of its session left nothing.
    assert not member.in_group and not member.join_in_doubt
    coord.joins[:] = [None]
    drv.publish(report)
    assert member.in_group and coord.calls[-2:] == ['create', 'join']


def test_cluster_flags_are_refused_with_the_reason() -> None:
    drv = _driver('zookeeper://127.0.0.1:2181')
    assert Capability.CLUSTER_FLAGS not in drv.capabilities
    for call in (lambda: drv.set_flag('maintenance', 'global'),
                 drv.get_flags):
        with pytest.raises(exception.CapabilityMissing) as err:
            call()
        assert "Driver 'tooz'" in str(err.value)
        assert "members' capabilities" in str(err.value)
        assert 'storage or redis' in str(err.value)
