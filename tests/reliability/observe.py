"""What the backend cases share: an observer through the real monitor,
tooz members with jittered intervals, and the options they run with.

The observer is a :class:`heartbeat.servicegroup.API` watching the group
(the path a user's subscriber takes): every Down and Left event it pushes
is kept, and "up again" means every member's newest report shows the
expected state while the member is judged UP.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import math
import time
from typing import Any
import uuid

from oslo_config import cfg
import pytest

from heartbeat.drivers.redis import RedisDriver
from heartbeat.drivers.tooz import ToozDriver
from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing.events import EventRecorder
from heartbeat.testing.fleet import MemberFleet

REPORT_INTERVAL = 0.5
#: The observer reads this often; "up within one report_interval" allows
#: one read on top.
POLL = 0.05
JITTER = 0.2


def heartbeat_opts(down_time: float,
                   interval: float = REPORT_INTERVAL) -> dict[str, Any]:
    return {'report_interval': interval, 'service_down_time': down_time}


class Observer:
    """Watches ``group`` through ``driver``; keeps every event."""

    def __init__(self, conf: cfg.ConfigOpts, driver: Any,
                 group: str) -> None:
        conf.set_override('poll_interval', POLL, 'heartbeat_monitor')
        self.group = group
        self.events = EventRecorder()
        self.sg = servicegroup.API(conf, driver=driver)
        self.subscription = self.sg.watch(group, self.events)
        self._mark = 0
        #: The MemberFleet beating the members, if one does.
        self.fleet: MemberFleet | None = None

    def mark(self) -> None:
        """Count Down and Left events from now on."""
        self._mark = len(self.events.events)

    def _since(self, kind: str) -> set[str]:
        return {e.member_id for e in self.events.events[self._mark:]
                if e.kind == kind}

    @property
    def downs(self) -> set[str]:
        return self._since('down')

    @property
    def lefts(self) -> set[str]:
        return self._since('left')

    def wait_event(self, kind: str, member_id: str,
                   timeout: float) -> float | None:
        """Seconds until a ``kind`` event about ``member_id``.

        Counts events since the mark; None if none came within ``timeout``.
        """
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if member_id in self._since(kind):
                return time.monotonic() - start
            time.sleep(0.01)
        return None

    def first(self, kind: str, member_id: str) -> float | None:
        """When the first ``kind`` event about ``member_id`` came.

        Wall time it was received, of those since the mark; None if none.
        """
        pairs = zip(self.events.events[self._mark:],
                    self.events.received[self._mark:], strict=False)
        return next((at for e, at in pairs
                     if e.kind == kind and e.member_id == member_id), None)

    def showing(self, ids: set[str], state: str) -> set[str]:
        """The members of ``ids`` judged UP with a report of ``state``."""
        return {m.member_id for m in self.sg.get_all(self.group)
                if m.member_id in ids and m.status is Status.UP
                and m.report.state == state}

    def wait_showing(self, ids: set[str], state: str,
                     timeout: float) -> float | None:
        """Seconds until every member of ``ids`` shows ``state``.

        None if some still do not after ``timeout``.
        """
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.showing(ids, state) == ids:
                return time.monotonic() - start
            time.sleep(POLL / 5)
        return None

    def close(self) -> None:
        self.subscription.cancel()
        self.sg.close()


class ToozMembers:
    """``count`` members, each with its own tooz driver and interval.

    Member i reports every REPORT_INTERVAL times a factor spread evenly
    over ``1 +- JITTER``: their beats drift apart as jittered ones would.
    """

    def __init__(self, url: str, group: str, count: int,
                 down_time: float) -> None:
        self.state = 'before'
        self.apis: list[servicegroup.API] = []
        self.ids = {'m%03d' % i for i in range(count)}
        for i, name in enumerate(sorted(self.ids)):
            spread = 1 - JITTER + 2 * JITTER * i / max(1, count - 1)
            conf = tooz_conf(url, down_time, REPORT_INTERVAL * spread)
            api = servicegroup.API(conf, driver=ToozDriver(conf))
            api.join(name, group, state_cb=lambda: self.state)
            self.apis.append(api)

    def close(self) -> None:
        for api in self.apis:
            api.close()


def tooz_conf(url: str, down_time: float,
              interval: float = REPORT_INTERVAL) -> cfg.ConfigOpts:
    return config.make_conf(
        heartbeat=dict(heartbeat_opts(down_time, interval), driver='tooz'),
        # The membership outlives an outage as long as a beat may be
        # missed: session_timeout = service_down_time.
        heartbeat_tooz={'backend_url': url,
                        'session_timeout': math.ceil(down_time),
                        'operation_timeout': 1.0})


def redis_conf(url: str, prefix: str, down_time: float) -> cfg.ConfigOpts:
    return config.make_conf(
        heartbeat=dict(heartbeat_opts(down_time), driver='redis'),
        heartbeat_redis={'url': url, 'prefix': prefix,
                         'socket_timeout': 0.3, 'reconnect_min_delay': 0.05,
                         'reconnect_max_delay': 0.2})


#: What a case gets: the observer, the member ids, and a way to set the
#: state every member reports from now on.
Members = tuple[Observer, set[str], Callable[[str], None]]


@contextlib.contextmanager
def redis_fleet(server: Any, down_time: float,
                count: int) -> Iterator[Members]:
    """``count`` members beating from one process (publish_many)."""
    prefix, group = 'hb%s' % uuid.uuid4().hex[:8], 'compute'
    fleet = MemberFleet(RedisDriver(redis_conf(server.url, prefix,
                                               down_time)),
                        group, count, REPORT_INTERVAL, jitter=JITTER)
    fleet.state = 'before'

    def set_state(state: str) -> None:
        fleet.state = state
    with fleet:
        conf = redis_conf(server.url, prefix, down_time)
        observer = Observer(conf, RedisDriver(conf), group)
        observer.fleet = fleet
        try:
            yield observer, set(fleet.ids), set_state
        finally:
            observer.close()


@contextlib.contextmanager
def tooz_members(server: Any, down_time: float,
                 count: int) -> Iterator[Members]:
    """``count`` tooz members, each with its own sessions."""
    group = 'g-%s' % uuid.uuid4().hex[:8]
    members = ToozMembers(server.url, group, count, down_time)

    def set_state(state: str) -> None:
        members.state = state
    try:
        conf = tooz_conf(server.url, down_time)
        observer = Observer(conf, ToozDriver(conf), group)
        try:
            yield observer, members.ids, set_state
        finally:
            observer.close()
    finally:
        members.close()


#: Backend name -> the session fixture of its server (and its marker).
SERVERS = {'redis': 'redis_server', 'ZooKeeper': 'zookeeper',
           'etcd': 'etcd', 'memcached': 'memcached'}


def backends(*names: str) -> list[Any]:
    """Parameters for a case run once per backend, each with its marker."""
    return [pytest.param(name, id=name.lower(), marks=getattr(
        pytest.mark, SERVERS[name].replace('_server', '')))
        for name in names]


@contextlib.contextmanager
def members_on(request: pytest.FixtureRequest, name: str, down_time: float,
               redis_count: int, tooz_count: int
               ) -> Iterator[tuple[Any, Members, str]]:
    """The server of backend ``name``, its members, and what they are."""
    server = request.getfixturevalue(SERVERS[name])
    if name == 'redis':
        with redis_fleet(server, down_time, redis_count) as members:
            yield server, members, 'members from one process (publish_many)'
    else:
        with tooz_members(server, down_time, tooz_count) as members:
            yield server, members, 'tooz members, each its own sessions'


def settle(members: Members) -> tuple[Observer, set[str]]:
    """Wait until every member is up, then switch them to ``during``.

    Down and Left events are counted from here on.
    """
    observer, ids, set_state = members
    settled = observer.wait_showing(ids, 'before', 30.0)
    assert settled is not None, 'members never all up before the fault'
    observer.mark()
    set_state('during')
    return observer, ids
