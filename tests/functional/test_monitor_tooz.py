"""The monitor on the tooz driver, against real tooz backends.

Members join through the tooz driver (in this process, or as a
heartbeat-member process that is killed); an observer watches the group
through servicegroup.API.watch() and must be told, on ZooKeeper, etcd,
redis and memcached alike:

* MemberJoined then MemberUp for a member that beats;
* MemberStateChanged when its state changes;
* MemberDown after service_down_time, and not before, for a member that
  stops beating without leaving (its membership stays);
* MemberLeft(clean=True) for a clean leave, never MemberDown;
* for a killed member process: MemberDown first, then MemberLeft
  (clean=False) once the backend drops its membership after
  session_timeout (the SERVER_TTL every one of these backends declares).
"""

from __future__ import annotations

from collections.abc import Iterator
import configparser
import pathlib
import subprocess
import sys
import threading
import time
from typing import Any
import uuid

from oslo_config import cfg
import pytest

from heartbeat.drivers.base import Capability
from heartbeat.drivers import tooz as tooz_driver
from heartbeat.model import Event
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing.events import EventRecorder
from heartbeat.testing import servers

REPORT = 0.5
DOWN = 1.5
# Longer than DOWN, so that a killed member is judged down well before
# the backend drops its membership.
SESSION = 6
#: How late an event may come after it is due (reads poll every
#: report_interval / 4; ZooKeeper reads one member per request).
SLACK = 1.0

BACKENDS = [
    pytest.param(servers.ZooKeeperServer, marks=pytest.mark.zookeeper,
                 id='zookeeper'),
    pytest.param(servers.EtcdServer, marks=pytest.mark.etcd, id='etcd'),
    pytest.param(servers.RedisServer, marks=pytest.mark.redis, id='redis'),
    pytest.param(servers.MemcachedServer, marks=pytest.mark.memcached,
                 id='memcached'),
]


@pytest.fixture(scope='module', params=BACKENDS)
def url(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tooz URL of a real server, shared by the tests of the module."""
    server_cls = request.param
    with server_cls(str(tmp_path_factory.mktemp(server_cls.kind))) as srv:
        yield srv.url


@pytest.fixture
def group() -> str:
    return 'g-%s' % uuid.uuid4().hex[:8]


def sections(url: str) -> dict[str, dict[str, Any]]:
    return {
        'heartbeat': {'driver': 'tooz', 'report_interval': REPORT,
                      'service_down_time': DOWN},
        'heartbeat_tooz': {'backend_url': url, 'session_timeout': SESSION},
    }


def make_conf(url: str) -> cfg.ConfigOpts:
    return config.make_conf(**sections(url))


def join(url: str, group: str,
         states: dict[str, str]) -> list[servicegroup.API]:
    """One member per name in ``states``, each reporting its state there."""
    members = []
    for name in sorted(states):
        sg = servicegroup.API(make_conf(url))
        members.append(sg)
        sg.join(name, group, state_cb=lambda n=name: states[n])
    return members


def close(members: list[servicegroup.API]) -> None:
    # Each close waits about a second for tooz's executor: close together.
    threads = [threading.Thread(target=m.close) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def late(event: Event) -> float:
    """Seconds from the member's last report to the event (one host)."""
    return event.observed_wall - event.report.written_at


def test_member_life_is_pushed_as_events(url: str, group: str) -> None:
    states = {'m1': 'booting', 'm2': 'booting'}
    members = join(url, group, states)
    rec = EventRecorder()
    try:
        with servicegroup.API(make_conf(url)) as sg:
            sg.watch(group, rec)
            for name in states:
                rec.wait('up', name, 5 * REPORT + SLACK)
            states['m1'] = 'enabled'
            changed = time.monotonic()
            change = rec.wait('state_changed', 'm1', REPORT + SLACK)
            assert change.observed_at - changed <= REPORT + SLACK
            assert isinstance(change, MemberStateChanged)
            assert (change.old_state, change.new_state) == ('booting',
                                                            'enabled')

            # Stops beating without leaving, as a hung member would: its
            # membership stays, its report stands still.
            members[0].reporter('m1', group).stop(leave=False)
            down = rec.wait('down', 'm1', DOWN + REPORT + SLACK)
            assert DOWN - 0.05 <= late(down) <= DOWN + SLACK, late(down)
            assert not sg.service_is_up(group, 'm1')

            members[1].leave('m2', group)
            left = rec.wait('left', 'm2', REPORT + SLACK)
            assert isinstance(left, MemberLeft) and left.clean
            assert rec.kinds('m1') == ['joined', 'up', 'state_changed',
                                       'down']
            assert rec.kinds('m2') == ['joined', 'up', 'left']
    finally:
        close(members)


def member_process(url: str, group: str, member_id: str,
                   workdir: pathlib.Path) -> subprocess.Popen[bytes]:
    """A heartbeat-member process reporting 'running' in ``group``."""
    parser = configparser.ConfigParser()
    parser.read_dict(sections(url))
    conf_path = workdir / 'heartbeat.conf'
    with open(conf_path, 'w', encoding='utf-8') as f:
        parser.write(f)
    with open(workdir / 'member.log', 'ab') as log:
        return subprocess.Popen(
            [sys.executable, '-m', 'heartbeat.cmd.member',
             '--config-file', str(conf_path), '--group', group,
             '--member-id', member_id, '--state', 'running'],
            stdout=log, stderr=subprocess.STDOUT)


def test_killed_member_goes_down_then_the_backend_drops_it(
        url: str, group: str, tmp_path: pathlib.Path) -> None:
    scheme = url.split(':', 1)[0]
    assert Capability.SERVER_TTL in tooz_driver.BACKEND_CAPABILITIES[scheme]
    rec = EventRecorder()
    proc = member_process(url, group, 'p1', tmp_path)
    try:
        with servicegroup.API(make_conf(url)) as sg:
            sg.watch(group, rec)
            rec.wait('up', 'p1', 30.0)
            proc.kill()
            proc.wait()
            killed = time.monotonic()

            down = rec.wait('down', 'p1', DOWN + SLACK)
            assert DOWN - 0.05 <= late(down) <= DOWN + SLACK, late(down)
            # The backend, not the closed connection, ends the membership:
            # tooz renewed it every session_timeout / 2, so it outlives the
            # kill by at least that (a second less on memcached, whose
            # clock counts whole seconds) and at most session_timeout (a
            # second more on memcached).
            left = rec.wait('left', 'p1', SESSION + 1 + SLACK)
            assert isinstance(left, MemberLeft) and not left.clean
            dropped = left.observed_at - killed
            assert down.observed_at < left.observed_at
            assert SESSION / 2 - 1 <= dropped <= SESSION + 1 + SLACK, dropped
            assert rec.kinds('p1') == ['joined', 'up', 'down', 'left']
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
