"""The tooz driver (``tooz``): reports as tooz membership capabilities.

Options: ``[heartbeat_tooz]`` backend_url, session_timeout,
operation_timeout, claim_timeout, observer_id, payload_limit.

Backends: ZooKeeper (``zookeeper://``, ``kazoo://``), etcd
(``etcd3+http://``, ``etcd3+https://``), redis (``redis://``) and memcached
(``memcached://``).  :meth:`ToozDriver.start` refuses the tooz backends
that cannot carry reports (see :data:`UNSUPPORTED`).

Considerations:

* Each member id gets its own tooz coordinator, started with tooz's own
  heartbeat thread, so the backend drops the membership of a process that
  dies (ZooKeeper session, etcd lease, redis or memcached key time to live)
  after ``session_timeout``.  The report itself is the membership's
  capabilities, rewritten on every beat.
* A membership can vanish while the member runs: a ZooKeeper session that
  expired (kazoo reconnects with a new session, the ephemeral node is
  gone), an etcd lease that expired (tooz makes a new lease but does not
  re-create the member key), or a memcached that restarted or evicted the
  group.  The next beat finds the member missing and rejoins with the
  report it was publishing, so the newest state is back within one
  report_interval.  A beat that kazoo fails because the session expired
  while it was sent rejoins at once.
* On ZooKeeper, kazoo reconnects no slower than every half report_interval,
  and waits for the answer to one connect request at most that long (or
  operation_timeout when shorter): the driver lists the servers to kazoo
  several times, as kazoo divides the session timeout among the entries
  of its list.  A server that accepted a connection while it was still
  starting, and never answers it, costs one such wait, not a session.
  Each round of reconnect attempts tries every entry once.
* memcached counts expiry times in whole seconds, so a key can vanish up
  to a second early: memberships there are given ``session_timeout`` plus
  one second, and a dead member is dropped by the next read made between
  ``session_timeout`` and ``session_timeout`` + 1 s after its last tooz
  heartbeat.  memcached is a cache: a restart loses every group.  A group
  is one item holding every member's report: it must stay under
  memcached's item size limit (1 MiB by default), and every beat rewrites
  it with a compare-and-set that tooz retries a second later when another
  write came first, so beats in a large, busy group are sometimes a
  second late.
* A join answered after ``operation_timeout`` may still have gone
  through: after such a failure, a membership found under the member's
  own id is taken as the member's own (its report brought up to date)
  rather than refused as another process's.
* After :meth:`ToozDriver.leave` the member stays in its group with a
  report marked left, so observers see a clean leave; the membership itself
  ends when the driver stops.
* Reads use ``get_members_with_capabilities`` (one request on etcd and
  redis, one per member on ZooKeeper and memcached).  tooz watchers poll on
  most backends and never report capability changes, so this driver does
  not claim PUSH: the monitor polls it.
  :attr:`ToozDriver.backend_capabilities` lists what the configured backend
  really offers.
* Member ids must be ASCII (a ZooKeeper restriction of tooz).
* No cluster flags (CLUSTER_FLAGS), so no global maintenance: the only
  data tooz stores on every backend is a member's capabilities, which end
  with that member's session, while a flag must outlive the process that
  set it.  Group names do persist, but changing one is a delete and a
  create (never atomic), and memcached forgets them on a restart or an
  eviction.  Use the storage or redis driver where global maintenance is
  needed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import socket
import threading
import time
from typing import Any
from typing import ClassVar
import urllib.parse

from oslo_config import cfg
from oslo_log import log as logging
from stevedore import exception as stevedore_exception
import tooz
from tooz import coordination
from tooz import utils as tooz_utils

from heartbeat import address
from heartbeat.drivers import base
from heartbeat.drivers import record
from heartbeat import exception
from heartbeat.model import InvalidRecord
from heartbeat.model import Report
from heartbeat.model import Snapshot

LOG = logging.getLogger(__name__)

#: What each tooz backend really offers beyond the contract.
BACKEND_CAPABILITIES: dict[str, frozenset[base.Capability]] = {
    'zookeeper': frozenset({base.Capability.SERVER_TTL}),
    'kazoo': frozenset({base.Capability.SERVER_TTL}),
    'etcd3+http': frozenset({base.Capability.SERVER_TTL,
                             base.Capability.BATCHED_READ}),
    'etcd3+https': frozenset({base.Capability.SERVER_TTL,
                              base.Capability.BATCHED_READ}),
    'redis': frozenset({base.Capability.SERVER_TTL,
                        base.Capability.BATCHED_READ}),
    'memcached': frozenset({base.Capability.SERVER_TTL}),
}

#: tooz backends that cannot carry reports, and why.
UNSUPPORTED: dict[str, str] = {
    'file': "it cannot update a member's capabilities in place, so every "
            "report after the first would fail (heartbeat's storage driver "
            "is the one for a shared directory)",
    'ipc': 'it has no group membership',
    'mysql': 'it has no group membership',
    'postgresql': 'it has no group membership',
    'kubernetes': 'it has no group membership',
}

#: Port of each backend when its URL names none.
DEFAULT_PORTS: dict[str, int] = {
    'zookeeper': 2181, 'kazoo': 2181, 'etcd3+http': 2379,
    'etcd3+https': 2379, 'redis': 6379, 'memcached': 11211}


def endpoints(url: str) -> list[tuple[str, int]]:
    """The (host, port) servers a tooz backend URL names.

    The URL's own host and, on ZooKeeper, the ``hosts`` query entries.
    """
    parts = urllib.parse.urlsplit(url)
    port = DEFAULT_PORTS.get(parts.scheme)
    query = urllib.parse.parse_qs(parts.query)
    names = [parts.netloc.rpartition('@')[2], *query.get('hosts', [])]
    out = []
    for item in names:
        for name in filter(None, (n.strip() for n in item.split(','))):
            out.append(address.split_host_port(
                name, '[heartbeat_tooz] backend_url',
                '%s://host:%s' % (parts.scheme, port or 'port'),
                default_port=port))
    return out


def probe(servers: list[tuple[str, int]], timeout: float) -> str | None:
    """None when one of ``servers`` accepts a TCP connection; else why."""
    errors = []
    for host, port in servers:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return None
        except OSError as err:
            errors.append('%s:%d: %s' % (host, port, err.strerror or err))
    return '; '.join(errors)


#: tooz errors the driver handles itself instead of translating.
HANDLED = (coordination.MemberNotJoined, coordination.MemberAlreadyExist,
           coordination.GroupNotCreated, coordination.GroupAlreadyExist)


try:
    from kazoo.exceptions import ConnectionClosedError
    from kazoo.exceptions import SessionExpiredError
except ImportError:  # pragma: no cover - no ZooKeeper client installed
    #: Errors that say the member's session ended: none without kazoo.
    SESSION_ENDED: tuple[type[BaseException], ...] = ()
    #: Subclasses of those that say the client was closed instead.
    CLIENT_CLOSED: tuple[type[BaseException], ...] = ()
else:
    SESSION_ENDED = (SessionExpiredError,)
    CLIENT_CLOSED = (ConnectionClosedError,)

#: The ZooKeeper schemes.  A rejoin there does not call the coordinator's
#: heartbeat first (elsewhere it renews an expired etcd lease): on
#: ZooKeeper that is a read without a timeout, queued while kazoo
#: connects, which could hold the beat indefinitely.
ZOOKEEPER = frozenset({'zookeeper', 'kazoo'})


def session_ended(err: BaseException) -> bool:
    """Whether ``err`` came from the end of the member's session.

    kazoo fails the requests in flight when it is told that its session
    expired, and goes on with a new session in which the member's
    ephemeral node is gone: the membership is lost, not the backend.
    """
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, SESSION_ENDED):
            # A client closed by stop() is not a session lost.
            return not isinstance(cause, CLIENT_CLOSED)
        cause = cause.__cause__
    return False


#: Seconds between two rejoins of a member whose session just ended.
REJOIN_RETRY = 0.05


#: The report kept as a member's capabilities: the shared record format.
to_capabilities = record.as_record


def from_capabilities(group: str, member_id: str,
                      caps: Any) -> Report | InvalidRecord | None:
    """The report in ``caps``; None for a member that never reported."""
    if caps is None:
        return None
    return record.from_record(group, member_id, caps,
                              record.location('tooz', group),
                              'capabilities')


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stop_coordinator(coord: Any) -> None:
    try:
        coord.stop()
    except tooz.ToozError as err:
        LOG.debug('Stopping a tooz coordinator failed: %s', err)


#: Times the server list is given to kazoo at the most: each round of
#: reconnect attempts tries every entry once.
HANDSHAKE_REPEAT_MAX = 32


def _handshake_hosts(netloc: str, query: dict[str, list[str]],
                     session_timeout: int,
                     bound: float) -> dict[str, Any]:
    """Server list that bounds one kazoo handshake by ``bound`` seconds.

    kazoo waits for the answer to its connect request for the session
    timeout divided by the number of entries in its server list.  A
    server that accepted the connection while starting may never answer
    it: with one server, the member would wait a whole session_timeout
    before trying again, and its session would expire in the meantime.
    Listing the servers again makes each attempt wait at most about
    ``bound``: operation_timeout, or the reconnect delay when it is
    shorter, so that a member is back within about one report_interval
    after the server answers.
    """
    extra = query.get('hosts', [])
    servers = [h for h in [netloc, *extra] if h]
    count = sum(len(h.split(',')) for h in servers) or 1
    repeat = max(1, min(HANDSHAKE_REPEAT_MAX, math.ceil(
        session_timeout / (count * max(bound, 0.1)))))
    if repeat == 1:
        return {}
    # One string: tooz wraps each keyword option in a list.
    return {'hosts': ','.join(extra + servers * (repeat - 1))}


def coordinator_options(url: str, session_timeout: int,
                        operation_timeout: float,
                        reconnect_delay: float | None = None
                        ) -> dict[str, Any]:
    """The tooz coordinator options of one member, from ours.

    Given to tooz as keyword options, which win over the URL's query
    string: session_timeout decides membership whatever the URL says.
    The memcached socket timeout is left to the URL when it sets one.
    On ZooKeeper, ``reconnect_delay`` caps kazoo's reconnect backoff
    (a minute by default), so that a member is back within about that
    long after the server answers again.
    """
    parts = urllib.parse.urlsplit(url)
    scheme, query = parts.scheme, urllib.parse.parse_qs(parts.query)
    membership = session_timeout
    if scheme == 'memcached':
        # memcached's whole-second clock can end a key up to a second
        # early, and tooz renews it only every membership_timeout / 2:
        # one more second keeps a live member between two renewals.
        membership += 1
    options: dict[str, Any] = {'membership_timeout': str(membership)}
    if scheme in ZOOKEEPER:
        options['timeout'] = str(session_timeout)
        options.update(_handshake_hosts(
            parts.netloc, query, session_timeout,
            operation_timeout if reconnect_delay is None
            else min(operation_timeout, reconnect_delay)))
        if reconnect_delay is not None:
            options['connection_retry'] = {
                'max_tries': -1, 'delay': min(0.1, reconnect_delay),
                'backoff': 2, 'max_jitter': 0.2,
                'max_delay': reconnect_delay}
    elif scheme == 'memcached' and 'timeout' not in query:
        # tooz's memcached socket timeout is 30 s by default: a network
        # that drops packets would hold a member's only tooz worker (and
        # its beats) that long.  Whole seconds, as tooz reads it.
        options['timeout'] = str(max(1, math.ceil(operation_timeout)))
    return options


@dataclasses.dataclass
class _Member:
    coordinator: Any
    #: Held while one of this member's writes runs: a member stuck in a
    #: slow backend call delays only its own beats, never another's.
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    in_group: bool = False
    #: Left cleanly: still in the group (marked left) until stop().
    left: bool = False
    #: A join failed after it was sent, so it may still go through.
    join_in_doubt: bool = False


class ToozDriver(base.Driver):
    """Reports as capabilities of tooz group members, on any backend."""

    name: ClassVar[str] = 'tooz'
    #: Nothing beyond the contract is guaranteed on every tooz backend;
    #: see :attr:`backend_capabilities`.
    capabilities: ClassVar[frozenset[base.Capability]] = frozenset()
    no_flags_reason: ClassVar[str] = (
        "tooz keeps data only as members' capabilities, which end with the "
        "member's session")

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        from heartbeat.conf import tooz as tooz_conf

        tooz_conf.register_opts(conf)
        self.opts = conf.heartbeat_tooz
        self.scheme = urllib.parse.urlsplit(self.opts.backend_url).scheme
        self._observer: Any = None
        self._coordinators: dict[str, Any] = {}
        self._members: dict[tuple[str, str], _Member] = {}
        self._lock = threading.RLock()
        #: How often a lost membership was found and re-created.
        self.rejoins = 0

    @property
    def payload_limit(self) -> int:
        limit: int = self.opts.payload_limit
        return limit

    @property
    def _reconnect_delay(self) -> float:
        """Longest pause between two reconnect attempts: half a beat."""
        return float(self.conf.heartbeat.report_interval) / 2

    @property
    def backend_capabilities(self) -> frozenset[base.Capability]:
        """What the configured tooz backend offers beyond the contract."""
        return BACKEND_CAPABILITIES.get(self.scheme, frozenset())

    # -- tooz plumbing ------------------------------------------------------

    def _error(self, what: str, err: Exception) -> exception.BackendError:
        detail = exception.describe(err).rstrip('.')
        if 'timeout' in detail.lower() and not str(err).strip():
            detail = ('no answer within [heartbeat_tooz] operation_timeout '
                      '(%ss): %s' % (self.opts.operation_timeout, detail))
        return exception.BackendError(
            'tooz %s on the %s backend failed: %s. Check that the backend '
            'runs and [heartbeat_tooz] backend_url is right.'
            % (what, self.scheme or '?', detail))

    def _wait(self, what: str, result: Any) -> Any:
        """The value of a tooz async result; backend errors translated."""
        try:
            return result.get(timeout=self.opts.operation_timeout)
        except HANDLED:
            raise
        except tooz.ToozError as err:
            raise self._error(what, err) from err

    def _coordinator(self, member_id: str, heart: bool) -> Any:
        options = coordinator_options(self.opts.backend_url,
                                      self.opts.session_timeout,
                                      self.opts.operation_timeout,
                                      self._reconnect_delay)
        try:
            coord = coordination.get_coordinator(
                self.opts.backend_url, member_id.encode(), **options)
            coord.start(start_heart=heart)
        except tooz.ToozError as err:
            raise self._error('connect', err) from err
        except ValueError as err:
            raise exception.ConfigError(
                'Invalid [heartbeat_tooz] backend_url (scheme %r): %s'
                % (self.scheme, err)) from err
        except stevedore_exception.NoMatches as err:
            raise self._unknown_scheme() from err
        except Exception as err:
            # A client library's own error tooz did not translate (etcd3gw
            # on a closed port, say): still one line naming the backend.
            raise self._error('connect', err) from err
        return coord

    def _unknown_scheme(self) -> exception.ConfigError:
        return exception.ConfigError(
            '[heartbeat_tooz] backend_url: tooz has no %r backend installed; '
            'use zookeeper://, etcd3+http://, redis:// or memcached:// (a '
            "backend may need its own package, e.g. kazoo for ZooKeeper)."
            % self.scheme)

    def _check_scheme(self) -> None:
        if self.scheme in UNSUPPORTED:
            raise exception.ConfigError(
                'The tooz %s backend cannot carry heartbeat reports: %s. Set '
                '[heartbeat_tooz] backend_url to a zookeeper://, '
                'etcd3+http://, redis:// or memcached:// URL.'
                % (self.scheme, UNSUPPORTED[self.scheme]))

    def check(self) -> None:
        self._check_scheme()
        # Builds a coordinator without starting it: no connection is made.
        try:
            coordination.get_coordinator(
                self.opts.backend_url, b'heartbeat-check',
                **coordinator_options(self.opts.backend_url,
                                      self.opts.session_timeout,
                                      self.opts.operation_timeout,
                                      self._reconnect_delay))
        except stevedore_exception.NoMatches as err:
            raise self._unknown_scheme() from err
        except (ValueError, tooz.ToozError) as err:
            raise exception.ConfigError(
                'Invalid [heartbeat_tooz] backend_url (scheme %r): %s'
                % (self.scheme, exception.describe(err))) from err

    # -- lifecycle --

    def start(self) -> None:
        if self._observer is not None:
            return
        self.check()
        servers = endpoints(self.opts.backend_url)
        if servers:
            why = probe(servers, self.opts.connect_timeout)
            if why is not None:
                raise exception.BackendError(
                    'Cannot reach the tooz %s backend (%s) within '
                    '[heartbeat_tooz] connect_timeout (%ss). Check that it '
                    'runs and [heartbeat_tooz] backend_url is right.'
                    % (self.scheme, why, self.opts.connect_timeout))
        observer_id = self.opts.observer_id or '%s.observer.%d.%s' % (
            socket.gethostname(), os.getpid(), secrets.token_hex(4))
        self._observer = self._coordinator(observer_id, heart=False)
        LOG.info('heartbeat tooz driver connected to a %s backend.',
                 self.scheme)

    def stop(self) -> None:
        with self._lock:
            members = list(self._members.items())
            coords = list(self._coordinators.values())
            self._members.clear()
            self._coordinators.clear()
            observer, self._observer = self._observer, None
        for (group, member_id), member in members:
            if member.in_group:
                try:
                    self._wait('leave', member.coordinator.leave_group(
                        group.encode()))
                except (exception.BackendError, *HANDLED) as err:
                    LOG.debug('Could not leave %s as %s: %s', group,
                              member_id, err)
        # Each coordinator's executor takes about a second to wind down:
        # stop them side by side.
        threads = [threading.Thread(target=_stop_coordinator, args=(coord,))
                   for coord in [*coords, observer] if coord is not None]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # -- members --

    def _holders(self, group: str) -> set[str]:
        try:
            members = self._wait('read members', self._observer.get_members(
                group.encode()))
        except coordination.GroupNotCreated:
            return set()
        return {_text(m) for m in members}

    def join(self, group: str, member_id: str) -> None:
        if self._observer is None:
            raise exception.BackendError(
                'The tooz driver is not started; call start() first.')
        with self._lock:
            known = self._members.get((group, member_id))
            if known is not None:
                known.left = False
                return
            coord = self._coordinators.get(member_id)
        timeout = self.opts.claim_timeout
        if timeout is None:
            timeout = (self.opts.session_timeout
                       + self.conf.heartbeat.report_interval)
        deadline = time.monotonic() + timeout
        while member_id in self._holders(group):
            if time.monotonic() >= deadline:
                raise exception.HostIdConflict(
                    'Member %s of group %s is held by another live process; '
                    'each member id may be used by one process at a time. '
                    'Stop the other one, or wait for its membership to '
                    'expire ([heartbeat_tooz] session_timeout).'
                    % (member_id, group))
            time.sleep(max(0.05, min(0.5, timeout / 10)))
        if coord is None:
            # Connected outside the lock: the other members keep beating.
            fresh = self._coordinator(member_id, heart=True)
            with self._lock:
                coord = self._coordinators.setdefault(member_id, fresh)
            if coord is not fresh:
                _stop_coordinator(fresh)
        with self._lock:
            self._members[(group, member_id)] = _Member(coord)

    def _member(self, report: Report) -> _Member:
        member = self._members.get((report.group, report.member_id))
        if member is None or member.left:
            raise exception.NotJoined(
                'Member %s/%s has not joined through this driver; call '
                'join() first.' % (report.group, report.member_id))
        return member

    def _enter_group(self, member: _Member, group: bytes,
                     caps: dict[str, Any], member_id: str) -> None:
        coord = member.coordinator
        try:
            self._wait('create group', coord.create_group(group))
        except coordination.GroupAlreadyExist:
            pass
        try:
            self._wait('join', coord.join_group(group, capabilities=caps))
        except coordination.MemberAlreadyExist as err:
            if not member.join_in_doubt:
                raise exception.HostIdConflict(
                    'Member %s of group %s was joined by another process '
                    'first; each member id may be used by one process at a '
                    'time.' % (member_id, group.decode())) from err
            self._adopt(member, group, caps)
        except exception.BackendError as err:
            # A join failed by the end of its session left nothing behind:
            # the session's ephemeral nodes end with it.
            if not session_ended(err):
                member.join_in_doubt = True
            raise
        member.join_in_doubt = False
        member.in_group = True

    def _adopt(self, member: _Member, group: bytes,
               caps: dict[str, Any]) -> None:
        """Take the membership an earlier join in doubt created."""
        # The earlier join was answered after operation_timeout but went
        # through: tooz retries a memcached write refused by a concurrent
        # one a second later, and a stalled server answers when it can.
        try:
            self._wait('update', member.coordinator.update_capabilities(
                group, caps))
        except HANDLED as err:
            raise self._error('join', err) from err

    def _write(self, member: _Member, report: Report) -> None:
        caps = to_capabilities(report)
        size = len(tooz_utils.dumps(caps))
        if size > self.payload_limit:
            raise exception.PayloadTooLarge(
                'Report of %s/%s is %d bytes, above [heartbeat_tooz] '
                'payload_limit (%d); publish a smaller payload or raise the '
                'limit.' % (report.group, report.member_id, size,
                            self.payload_limit))
        group = report.group.encode()
        if not member.in_group:
            self._enter_group(member, group, caps, report.member_id)
            return
        try:
            self._wait('update', member.coordinator.update_capabilities(
                group, caps))
            return
        except (coordination.MemberNotJoined, coordination.GroupNotCreated):
            pass
        except exception.BackendError as err:
            # Rejoin in this beat rather than fail it and find the
            # membership missing on the next one.
            if not session_ended(err):
                raise
        self.rejoins += 1
        LOG.warning('Membership of %s in group %s was lost behind our back '
                    '(expired session or lease); rejoining with the current '
                    'report.', report.member_id, report.group)
        member.in_group = False
        if self.scheme not in ZOOKEEPER:
            try:
                # Renews an expired etcd lease before the key is re-created.
                member.coordinator.heartbeat()
            except tooz.ToozError as err:
                raise self._error('heartbeat', err) from err
        # kazoo refuses requests at once until it starts its new session,
        # a moment after it failed the beat: retry that long at most.
        deadline = time.monotonic() + self.opts.operation_timeout
        while True:
            try:
                self._enter_group(member, group, caps, report.member_id)
                return
            except exception.BackendError as err:
                if not session_ended(err) or time.monotonic() >= deadline:
                    raise
            time.sleep(REJOIN_RETRY)

    def publish(self, report: Report) -> None:
        with self._lock:
            member = self._member(report)
        with member.lock:
            self._write(member, report)

    def leave(self, report: Report) -> None:
        with self._lock:
            member = self._member(report)
        with member.lock:
            self._write(member, report)
            member.left = True

    # -- observers --

    def _groups(self) -> list[str]:
        return sorted(_text(g) for g in self._wait(
            'list groups', self._observer.get_groups()))

    def snapshot(self, group: str | None = None,
                 since: Any = None) -> Snapshot:
        if self._observer is None:
            raise exception.BackendError(
                'The tooz driver is not started; call start() first.')
        groups = [group] if group is not None else self._groups()
        # Ask for every group first, so backends with asynchronous
        # requests (ZooKeeper) read them concurrently.
        pending = [(g, self._observer.get_members_with_capabilities(
            g.encode())) for g in groups]
        reports: list[Report] = []
        invalid: list[InvalidRecord] = []
        for grp, result in pending:
            try:
                members = self._wait('read members', result)
            except coordination.GroupNotCreated:
                continue
            for raw_id, caps in members.items():
                item = from_capabilities(grp, _text(raw_id), caps)
                if isinstance(item, Report):
                    reports.append(item)
                elif item is not None:
                    invalid.append(item)
        return Snapshot(tuple(reports), tuple(invalid))
