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
