"""The redis driver over TLS and through a Sentinel, against real servers.

The TLS server listens for TLS only, with a throwaway CA made for the
module, and requires both a client certificate and a password.  The
Sentinel monitors a password-protected master; the failover test adds a
replica and promotes it.  Every driver is configured through
[heartbeat_redis] options, as an operator would configure it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import logging
import pathlib
import uuid

from oslo_config import cfg
import pytest

from heartbeat.drivers.redis import RedisDriver
from heartbeat import exception
from heartbeat.model import Report
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing import servers

pytestmark = pytest.mark.redis

PASSWORD = 'pa55-%s' % uuid.uuid4().hex[:8]
WRONG = 'wrong-%s' % uuid.uuid4().hex[:8]
SERVICE = 'hbmaster'
# Nothing listens on port 1: a driver that works with this URL took the
# address from the Sentinel.
NOWHERE = '127.0.0.1:1'

REPORT_INTERVAL = 0.2
DOWN_TIME = 4.0
# From the end of the failover to the first report read from the new master.
FLOW_WITHIN = 5.0


# -- helpers -----------------------------------------------------------------

@pytest.fixture
def prefix() -> str:
    return 'hb%s' % uuid.uuid4().hex[:8]


def make_conf(prefix: str, **opts: object) -> cfg.ConfigOpts:
    return config.make_conf(heartbeat_redis={'prefix': prefix, **opts})


@contextlib.contextmanager
def started(conf: cfg.ConfigOpts) -> Iterator[RedisDriver]:
    driver = RedisDriver(conf)
    driver.start()
    try:
        yield driver
    finally:
        driver.stop()


def url(scheme: str, port: int, password: str = '', db: int = 0) -> str:
    auth = ':%s@' % password if password else ''
    return '%s://%s127.0.0.1:%d/%d' % (scheme, auth, port, db)


def publish(driver: RedisDriver, member: str, seq: int, state: str) -> None:
    driver.join('g', member)
    driver.publish(Report(member_id=member, group='g', seq=seq,
                          incarnation=1, state=state))


def seen(driver: RedisDriver) -> list[tuple[str, int, str | None]]:
    return sorted((r.member_id, r.seq, r.state)
                  for r in driver.snapshot('g').reports)


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, 'a password is shown: %s' % text


# -- TLS ---------------------------------------------------------------------

@pytest.fixture(scope='module')
def pki(tmp_path_factory: pytest.TempPathFactory) -> servers.TLSFiles:
    return servers.TLSFiles.create(str(tmp_path_factory.mktemp('pki')))


@pytest.fixture(scope='module')
def tls_server(tmp_path_factory: pytest.TempPathFactory,
               pki: servers.TLSFiles) -> Iterator[servers.RedisServer]:
    with servers.RedisServer(str(tmp_path_factory.mktemp('redis-tls')),
                             password=PASSWORD, tls=pki,
                             tls_auth_clients='yes') as srv:
        yield srv


def tls_opts(pki: servers.TLSFiles, **opts: object) -> dict[str, object]:
    """Trust ``pki``'s CA and present its client certificate."""
    return {'ssl_ca_file': pki.ca_file, 'ssl_cert_file': pki.client_cert_file,
            'ssl_key_file': pki.client_key_file, **opts}


def test_member_over_tls_is_read_back_by_another_driver(
        tls_server: servers.RedisServer, pki: servers.TLSFiles,
        prefix: str) -> None:
    port = tls_server.port
    # The writer asks for TLS by the scheme, the reader by the ssl option.
    writer_conf = make_conf(prefix, **tls_opts(
        pki, url=url('rediss', port), password=PASSWORD))
    reader_conf = make_conf(prefix, **tls_opts(
        pki, url=url('redis', port, PASSWORD), ssl=True))
    with started(writer_conf) as writer, started(reader_conf) as reader:
        publish(writer, 'm1', 7, 'over-tls')
        assert seen(reader) == [('m1', 7, 'over-tls')]
        publish(writer, 'm1', 8, 'still-tls')
        assert seen(reader) == [('m1', 8, 'still-tls')]


@contextlib.contextmanager
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture every record, heartbeat's included.

    Another test of the same process may have set up oslo.log with
    heartbeat's loggers at WARNING: lower them for this block too.
    """
    with caplog.at_level(logging.DEBUG), caplog.at_level(
            logging.DEBUG, logger='heartbeat'):
        yield


def test_wrong_ca_is_a_backend_error_that_hides_the_password(
        tls_server: servers.RedisServer, pki: servers.TLSFiles,
        tmp_path: pathlib.Path, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    other = servers.TLSFiles.create(str(tmp_path))
    conf = make_conf(prefix, **tls_opts(
        pki, url=url('rediss', tls_server.port, PASSWORD),
        ssl_ca_file=other.ca_file))
    with logged(caplog), pytest.raises(exception.BackendError) as err:
        RedisDriver(conf).start()
    message = str(err.value)
    assert 'certificate verify failed' in message
    assert 'rediss://:***@127.0.0.1:%d/0' % tls_server.port in message
    # A daemon that logs the traceback shows the cause as well.
    assert_hidden(message + str(err.value.__cause__) + caplog.text, PASSWORD)


def test_missing_client_certificate_is_refused(
        tls_server: servers.RedisServer, pki: servers.TLSFiles,
        prefix: str) -> None:
    conf = make_conf(prefix, url=url('rediss', tls_server.port),
                     password=PASSWORD, ssl_ca_file=pki.ca_file)
    with pytest.raises(exception.BackendError) as err:
        RedisDriver(conf).start()
    # OpenSSL words the refusal differently depending on when the server's
    # alert arrives ("certificate required", "EOF"): only where is checked.
    assert 'rediss://127.0.0.1:%d/0' % tls_server.port in str(err.value)
    assert_hidden(str(err.value), PASSWORD)


@pytest.mark.parametrize('where', ['url', 'password option'])
def test_password_works_and_is_never_shown(
        tls_server: servers.RedisServer, pki: servers.TLSFiles, prefix: str,
        where: str, caplog: pytest.LogCaptureFixture) -> None:
    def conf_with(password: str) -> cfg.ConfigOpts:
        if where == 'url':
            return make_conf(prefix, **tls_opts(
                pki, url=url('rediss', tls_server.port, password)))
        return make_conf(prefix, **tls_opts(
            pki, url=url('rediss', tls_server.port), password=password))

    with logged(caplog):
        with started(conf_with(PASSWORD)) as driver:
            publish(driver, 'm1', 1, 'authenticated')
            assert seen(driver) == [('m1', 1, 'authenticated')]
        with pytest.raises(exception.BackendError) as err:
            RedisDriver(conf_with(WRONG)).start()
    assert 'invalid' in str(err.value).lower()
    assert_hidden(str(err.value), PASSWORD, WRONG)
    # The connection was logged, with the password kept out of it.
    assert 'connected to rediss://' in caplog.text
    if where == 'url':
        assert 'rediss://:***@' in caplog.text
    assert_hidden(caplog.text, PASSWORD, WRONG)


def test_options_override_the_url(
        tls_server: servers.RedisServer, pki: servers.TLSFiles,
        prefix: str) -> None:
    port = tls_server.port
    conf = make_conf(prefix, **tls_opts(
        pki, url=url('rediss', port, WRONG, db=0), password=PASSWORD, db=3))
    in_db3 = make_conf(prefix, **tls_opts(
        pki, url=url('rediss', port, PASSWORD, db=3)))
    in_db0 = make_conf(prefix, **tls_opts(
        pki, url=url('rediss', port, PASSWORD, db=0)))
    with started(conf) as writer:
        publish(writer, 'm1', 1, 'db3')
    with started(in_db3) as reader3, started(in_db0) as reader0:
        assert seen(reader3) == [('m1', 1, 'db3')]
        assert seen(reader0) == []


# -- Sentinel ----------------------------------------------------------------

@pytest.fixture(scope='module')
def sentinel(tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[servers.RedisSentinel]:
    with servers.RedisServer(str(tmp_path_factory.mktemp('master')),
                             password=PASSWORD) as master, \
            servers.RedisSentinel(str(tmp_path_factory.mktemp('sentinel')),
                                  master, SERVICE) as sen:
        yield sen


def sentinel_opts(sen: servers.RedisSentinel,
                  **opts: object) -> dict[str, object]:
    return {'sentinel_hosts': [sen.hosts], 'sentinel_service': sen.service,
            **opts}


@pytest.mark.parametrize('where', ['url', 'password option'])
def test_sentinel_names_the_master_members_report_to(
        sentinel: servers.RedisSentinel, prefix: str, where: str) -> None:
    if where == 'url':
        opts = sentinel_opts(sentinel, url='redis://:%s@%s/0' % (PASSWORD,
                                                                 NOWHERE))
    else:
        opts = sentinel_opts(sentinel, url='redis://%s/0' % NOWHERE,
                             password=PASSWORD)
    direct = make_conf(prefix, url=sentinel.master.url)
    with started(make_conf(prefix, **opts)) as writer, \
            started(make_conf(prefix, **opts)) as observer, \
            started(direct) as on_master:
        publish(writer, 'm1', 3, 'via-sentinel')
        assert seen(observer) == [('m1', 3, 'via-sentinel')]
        assert seen(on_master) == [('m1', 3, 'via-sentinel')]


def test_unknown_sentinel_service_is_a_backend_error(
        sentinel: servers.RedisSentinel, prefix: str) -> None:
    conf = make_conf(prefix, **sentinel_opts(
        sentinel, sentinel_service='nosuch', password=PASSWORD))
    with pytest.raises(exception.BackendError) as err:
        RedisDriver(conf).start()
    message = str(err.value)
    assert 'sentinel %s (service nosuch)' % sentinel.hosts in message
    assert "No master found for 'nosuch'" in message
    assert_hidden(message, PASSWORD)


@pytest.fixture
def replicated(tmp_path: pathlib.Path) -> Iterator[servers.RedisSentinel]:
    """A master, its replica and a Sentinel, for one test."""
    def workdir(name: str) -> str:
        return str(tmp_path / name)

    with servers.RedisServer(workdir('master'),
                             password=PASSWORD) as master, \
            servers.RedisServer(workdir('replica'), password=PASSWORD,
                                replica_of=master), \
            servers.RedisSentinel(workdir('sentinel'), master,
                                  SERVICE) as sen:
        yield sen


def showing(state: str) -> Callable[[dict[str, Report]], bool]:
    def check(reports: dict[str, Report]) -> bool:
        return [(m, r.state) for m, r in reports.items()] == [('m1', state)]
    return check


def test_failover_member_keeps_reporting_to_the_new_master(
        replicated: servers.RedisSentinel, prefix: str) -> None:
    sen = replicated
    opts = sentinel_opts(sen, password=PASSWORD, socket_timeout=0.5,
                         reconnect_min_delay=0.05, reconnect_max_delay=0.2)
    member_conf = make_conf(prefix, **opts)
    member_conf.set_override('report_interval', REPORT_INTERVAL, 'heartbeat')
    member_conf.set_override('service_down_time', DOWN_TIME, 'heartbeat')
    state = ['before']
    api = servicegroup.API(member_conf, driver=RedisDriver(member_conf))
    try:
        api.join('m1', 'g', state_cb=lambda: state[0])
        with started(make_conf(prefix, **opts)) as observer, \
                servers.LivenessWatch(observer, 'g', DOWN_TIME) as watch:
            watch.wait_for(showing('before'), 5.0)
            old = sen.master_address()
            new = sen.failover()
            assert new != old
            # The old master is a read-only replica now: whatever shows
            # this state was written to the new one.
            state[0] = 'after'
            watch.wait_for(showing('after'), FLOW_WITHIN)
            assert watch.downs == [], 'judged down: %s' % watch.downs
        direct = make_conf(prefix, url=url('redis', new[1]),
                           password=PASSWORD)
        with started(direct) as on_new_master:
            assert [(r.member_id, r.state) for r in
                    on_new_master.snapshot('g').reports] == [('m1', 'after')]
    finally:
        api.close()
