"""The native redis driver (``redis``)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import dataclasses
import os
import secrets
import socket
import threading
import time
from typing import Any
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging
import redis

from heartbeat.drivers import base
from heartbeat.drivers.redis import client as client_mod
from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis.listener import ChangeListener
from heartbeat.drivers.redis import reads
from heartbeat.drivers.redis import scripts
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.model import Snapshot

LOG = logging.getLogger(__name__)

#: Members republished in one pipelined round trip after a reconnect.
REPUBLISH_BATCH = 1000
#: Number of KEYS the join script takes (codec.Keys.all()).
JOIN_KEYS = b'5'
#: The digests go as bytes (nothing to encode on each call); the command
#: name as text, which the cluster client looks up to route the call.
EVALSHA = 'EVALSHA'


#: What ends one reconnect attempt (the thread tries again).
RECONNECT_ERRORS: tuple[type[Exception], ...] = (*client_mod.ERRORS,
                                                 exception.BackendError)


def new_epoch() -> str:
    """A fresh name for the dataset, used if it turns out to be new.

    Fresh on every call: a name reused after the data was lost would hide
    the loss from incremental readers.
    """
    return secrets.token_hex(8)


@dataclasses.dataclass
class _Member:
    keys: codec.Keys
    #: Publish-script arguments of this member, encoded once.
    args: codec.PublishArgs
    #: State of the last report that reached redis (None: push next one):
    #: the encoder's state token, or codec.state_of() where it has none.
    pushed_state: object | None = None
    #: Newest report handed to publish(), republished after a reconnect.
    latest: Report | None = None
    encoder: codec.RecordEncoder = dataclasses.field(
        default_factory=codec.RecordEncoder)


class RedisDriver(base.Driver):
    """Reports in redis, read by change index and pushed on a channel.

    URL and options: ``[heartbeat_redis]`` url (redis://, rediss://,
    unix://), username, password, db, ssl_*, sentinel_hosts and
    sentinel_service, cluster_nodes, prefix, socket_timeout,
    reconnect_min_delay, reconnect_max_delay, claim_timeout, member_ttl,
    gone_retention, payload_limit.

    Considerations:

    * A beat is one server-side script call: the owner check, the
      member's tick in the group's liveness index (scored by the server's
      clock, never going backwards) and its seq happen atomically in one
      round trip.  A beat that changes nothing but the seq writes no
      record: only a change (join, state, score or payload, incarnation,
      leave, first beat after a reconnect) writes the record and the
      group's change index.  Scripts are called by digest; a server that
      lost them (restart, SCRIPT FLUSH) answers NOSCRIPT once and they are
      loaded again.  A plain beat that finds its owner entry gone (the
      data was lost behind a live connection) is sent a second time as a
      new owner's beat.
    * Readers pass the cursor of their previous read and get only what
      changed since (INCREMENTAL), and the liveness the server tells on
      its own clock (SERVER_LIVENESS): the ages of the members whose
      newest beat turned older than service_down_time since that read,
      and of those that beat again after it.  A read costs the number of
      such events, not of members; unchanged beats cost an observer
      nothing.  Liveness is immune to the members' clocks; a server clock
      stepped back delays a Down by the step.  A lost dataset (a
      restarted server without persistence, detected by the group's epoch) or
      a cursor older than gone_retention gives a complete snapshot.
    * State changes are published on ``<prefix>:v2:changes`` (PUSH).
      Plain beats are not, so push traffic follows changes, not members.
    * Keys carry the protocol version (``<prefix>:v2:{<group>}:...``) and
      ``<prefix>:version`` names it: a driver refuses to start on a prefix
      whose data another version writes, since the two would not see each
      other's members.
    * A member id is owned by the process that joined it; a second process
      joining the same id while its record keeps changing is refused.
    * After the connection broke, beats fail fast while a background
      thread reconnects with exponential backoff; the newest report of
      every member is republished as soon as it succeeds.
    * Records silent for member_ttl (by the server's clock) are purged.
    * Cluster flags (CLUSTER_FLAGS) are one hash, ``<prefix>:flags``: a
      read is one HGETALL, a write one script call that also keeps the
      number of names bounded.  A write has returned once the master holds
      it; whether it survives a restart of redis is up to the server's
      persistence (``appendonly yes`` keeps it), and with Sentinels a
      failover right after the write may lose it as it may lose a beat.
      A lost flag reads as unset, which for maintenance means ``none``:
      run redis with persistence where global maintenance must hold.
    * A single server, a Sentinel-managed master or a Redis Cluster
      (``cluster_nodes``).  Every key of a group carries the group's name
      as a hash tag, so on a cluster a group lives in one slot and a beat
      or a read of it is still one script call on one shard; groups
      spread over the shards.  The groups set (for discovery) and the
      change channel are apart from the groups: a reader of every group
      reads each on its shard; a change is pushed cluster-wide.  Every
      member process enters its groups in the groups set again once per
      service_down_time, so a set lost with its shard is whole again
      within that time.  Each group's dataset is named by its own epoch,
      so a shard that lost its data makes its groups read whole.
    * With Sentinels, a connection opened before a failover keeps writing
      to the old master until Sentinel turns it into a replica (its
      writes then fail with READONLY and the client asks the Sentinels
      again).  With Sentinel's default timings that can take about 10 s,
      during which observers reading the new master see no beats: keep
      service_down_time well above it.
    """

    name: ClassVar[str] = 'redis'
    capabilities: ClassVar[frozenset[base.Capability]] = frozenset({
        base.Capability.PUSH, base.Capability.INCREMENTAL,
        base.Capability.SERVER_LIVENESS, base.Capability.BATCHED_READ,
        base.Capability.CLUSTER_FLAGS})

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        from heartbeat.conf import redis as redis_conf

        redis_conf.register_opts(conf)
        self.opts = conf.heartbeat_redis
        self.prefix: str = self.opts.prefix
        self.owner = '%s:%d:%s' % (socket.gethostname(), os.getpid(),
                                   secrets.token_hex(4))
        self._client: redis.Redis | None = None
        #: Redis Cluster: every script call works on one group's slot.
        self.cluster = bool(self.opts.cluster_nodes)
        self._payload_limit: int = self.opts.payload_limit
        self._members: dict[tuple[str, str], _Member] = {}
        #: Monotonic time of the next refresh of the groups set.
        self._groups_due = time.monotonic()
        self._lock = threading.RLock()
        self._listeners: list[ChangeListener] = []
        self._reconnector: threading.Thread | None = None
        self._stopping = threading.Event()
        #: Set while the connection is known to be broken.
        self.disconnected = threading.Event()
        self.reconnects = 0
        #: Reports the reconnect thread could not republish (see
        #: :meth:`_republish`), and its unexpected errors.
        self.republish_errors = 0
        self.thread_errors = 0

    # -- connection --

    @property
    def payload_limit(self) -> int:
        return self._payload_limit

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise exception.BackendError(
                'The redis driver is not started; call start() first.')
        return self._client

    def _backoff(self) -> client_mod.Backoff:
        return client_mod.Backoff(self.opts.reconnect_min_delay,
                                  self.opts.reconnect_max_delay)

    @contextlib.contextmanager
    def _translated(self, what: str, lost: bool = False) -> Iterator[None]:
        """Raise redis errors of the block as one BackendError naming ``what``.

        The one place where redis-py's errors become heartbeat's; ``lost``
        also marks the connection lost (the reconnect thread takes over).
        """
        try:
            yield
        except client_mod.ERRORS as err:
            if lost:
                self._lost(err)
            raise self._error(what, err) from err

    def _error(self, what: str, err: Exception) -> exception.BackendError:
        where = 'cluster_nodes, url' if self.cluster else 'url'
        return exception.BackendError(
            'redis %s failed at %s: %s. Check that the server runs and '
            '[heartbeat_redis] %s, password and TLS options are right.'
            % (what, client_mod.describe(self.conf), str(err).rstrip('.'),
               where))

    @staticmethod
    def _eval(client: Any, script: scripts.LuaScript, args: Sequence[Any],
              numkeys: bytes = b'1') -> Any:
        """Run ``script`` by its digest; load it first if the server lost it.

        Raw EVALSHA rather than redis-py's Script wrapper: the digest is
        known up front, and a server that lost its scripts (restart, SCRIPT
        FLUSH) costs one extra round trip once, not a check on every call.
        Every script takes at least one key, of the slot it works on: the
        cluster client sends the call to the node that serves it.
        """
        try:
            return client.execute_command(EVALSHA, script.sha_bytes,
                                          numkeys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(script.source)
            return client.execute_command(EVALSHA, script.sha_bytes,
                                          numkeys, *args)

    def _execute(self, fill: Callable[[Any], None]) -> list[Any]:
        """Run the commands ``fill`` queues on a pipeline, in one round trip.

        On NOSCRIPT every script is loaded and the pipeline is run again;
        the scripts queued here are idempotent for their caller.
        """
        pipe = self.client.pipeline(transaction=False)
        fill(pipe)
        try:
            results: list[Any] = pipe.execute()
        except redis.exceptions.NoScriptError:
            for script in scripts.ALL:
                self.client.script_load(script.source)
            pipe = self.client.pipeline(transaction=False)
            fill(pipe)
            results = pipe.execute()
        return results

    def check(self) -> None:
        # Checks the URL, TLS, Sentinel and cluster options unconnected.
        client_mod.check(self.conf)

    def start(self) -> None:
        if self._client is not None:
            return
        with self._translated('connect'):
            # A cluster client asks its nodes for the slots as it is built.
            client = client_mod.make_client(self.conf)
        try:
            client.ping()
            self._check_protocol(client)
        except client_mod.ERRORS as err:
            client.close()
            raise self._error('connect', err) from err
        except exception.ConfigError:
            client.close()
            raise
        self._stopping.clear()
        self._client = client
        LOG.info('heartbeat redis driver connected to %s.',
                 client_mod.describe(self.conf))

    def _check_protocol(self, client: redis.Redis) -> None:
        """Refuse a prefix whose data another protocol version writes.

        Two versions keep their keys apart, so they would not see each
        other's members at all: each would take the other's members for
        gone.  The version is stored once under the prefix; data of
        protocol 1 (which stored none) is told by its keys.
        """
        key = codec.version_key(self.prefix)
        found = client.get(key)
        if found is None:
            if client.exists(*codec.old_keys(self.prefix)):
                found = b'1'
            else:
                client.set(key, codec.PROTOCOL, nx=True)
                found = client.get(key)
        version = codec.text(found) if found is not None else ''
        if version != str(codec.PROTOCOL):
            raise exception.ConfigError(
                'redis at %s holds heartbeat data of protocol %s under '
                '[heartbeat_redis] prefix %r; this heartbeat speaks protocol '
                '%d, and members and observers of two protocols cannot see '
                'each other. Upgrade every member and observer of the '
                'cluster together, or give this one another prefix.'
                % (client_mod.describe(self.conf), version or '?',
                   self.prefix, codec.PROTOCOL))

    def stop(self) -> None:
        self._stopping.set()
        for listener in list(self._listeners):
            listener.cancel()
        self._listeners.clear()
        thread = self._reconnector
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._reconnector = None
        with self._lock:
            self._members.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        self.disconnected.clear()

    def _lost(self, err: Exception) -> None:
        """The connection broke: fail fast and reconnect in the background."""
        with self._lock:
            for member in self._members.values():
                member.pushed_state = None
            if self.disconnected.is_set() or self._stopping.is_set():
                return
            self.disconnected.set()
            LOG.warning('Lost redis at %s (%s); reconnecting in the '
                        'background.', client_mod.describe(self.conf), err)
            self._reconnector = threading.Thread(
                target=self._reconnect, daemon=True,
                name='heartbeat-redis-reconnect')
            self._reconnector.start()

    def _reconnect_backoff(self) -> client_mod.Backoff:
        """Backoff of the reconnect thread: never slower than half a beat.

        A member is back (its newest report republished) within about half
        a report_interval after the server answers again, whatever
        reconnect_max_delay says.
        """
        cap = min(self.opts.reconnect_max_delay,
                  self.conf.heartbeat.report_interval / 2)
        return client_mod.Backoff(min(self.opts.reconnect_min_delay, cap),
                                  cap)

    def _reconnect(self) -> None:
        backoff = self._reconnect_backoff()
        while not self._stopping.wait(backoff.next()):
            try:
                self.client.ping()
                self._republish()
            except RECONNECT_ERRORS as err:
                LOG.debug('redis reconnect attempt failed: %s', err)
                continue
            except Exception:
                # The thread must outlive anything: it is the only way
                # back for every member of this process.
                self.thread_errors += 1
                LOG.exception('redis reconnect attempt failed unexpectedly; '
                              'trying again.')
                continue
            self.reconnects += 1
            self.disconnected.clear()
            LOG.info('Reconnected to redis at %s; newest reports '
                     'republished.', client_mod.describe(self.conf))
            return

    def _republish(self) -> None:
        """Send every member's newest report again, pipelined in batches.

        Connection errors end the attempt (the caller retries); an error
        of one report (another owner, a report over payload_limit) is
        logged and counted, and the other members are still republished.
        """
        with self._lock:
            latest = [(m, m.latest) for m in self._members.values()
                      if m.latest is not None]
        queued = []
        for member, report in latest:
            try:
                queued.append((member, report,
                               *self._publish_args(member, report, False)))
            except Exception as err:
                self._not_republished(report, err)
        for first in range(0, len(queued), REPUBLISH_BATCH):
            batch = queued[first:first + REPUBLISH_BATCH]
            for (member, report, _, state), ok in zip(
                    batch, self._send_many(batch), strict=True):
                try:
                    self._check_published(report, member, state, ok)
                except exception.HostIdConflict as err:
                    self._not_republished(report, err)

    def _not_republished(self, report: Report, err: Exception) -> None:
        self.republish_errors += 1
        LOG.error('Not republishing %s/%s: %s', report.group,
                  report.member_id, err)

    # -- members --

    def _member(self, report: Report) -> _Member:
        member = self._members.get((report.group, report.member_id))
        if member is None:
            raise exception.NotJoined(
                'Member %s/%s has not joined through this driver; call '
                'join() first.' % (report.group, report.member_id))
        return member

    def _join_args(self, keys: codec.Keys, member_id: str, force: bool,
                   expected: str) -> list[str]:
        return [*keys.all(), member_id, self.owner, '1' if force else '0',
                expected]

    def _join_once(self, keys: codec.Keys, member_id: str, force: bool,
                   expected: str) -> tuple[bool, str]:
        def fill(pipe: Any) -> None:
            self._eval(pipe, scripts.JOIN,
                       self._join_args(keys, member_id, force, expected),
                       numkeys=JOIN_KEYS)
            self._add_groups({keys.group}, pipe)

        with self._translated('join'):
            (ok, tick), _ = self._execute(fill)
        return bool(ok), codec.text(tick)

    def _add_groups(self, groups: set[str], pipe: Any = None) -> None:
        """Enter ``groups`` in the groups set (for discovery).

        One SADD, sent at once or queued on ``pipe``.  Kept apart from the
        scripts, since on Redis Cluster the set lives in another slot than
        the groups' keys.
        """
        if groups:
            target = self.client if pipe is None else pipe
            target.sadd(codec.groups_key(self.prefix), *sorted(groups))

    def join(self, group: str, member_id: str) -> None:
        keys = codec.Keys(self.prefix, group)
        with self._lock:
            if (group, member_id) in self._members:
                return
        ok, tick = self._join_once(keys, member_id, False, '')
        if not ok:
            self._claim(keys, member_id, tick)
        self._add_member(keys, member_id)

    def _add_member(self, keys: codec.Keys, member_id: str) -> None:
        args = codec.PublishArgs.of(keys, member_id, self.owner)
        with self._lock:
            self._members[(keys.group, member_id)] = _Member(keys, args)

    def join_many(self, group: str, member_ids: Sequence[str]) -> None:
        """Join many member ids of ``group`` in one round trip.

        The counterpart of :meth:`publish_many`.  Ids another process
        holds are refused at once with HostIdConflict (no claim wait).
        """
        keys = codec.Keys(self.prefix, group)

        def fill(pipe: Any) -> None:
            for member_id in member_ids:
                self._eval(pipe, scripts.JOIN,
                           self._join_args(keys, member_id, False, ''),
                           numkeys=JOIN_KEYS)
            self._add_groups({group}, pipe)

        with self._translated('join'):
            results = self._execute(fill)[:-1]
        refused = []
        for member_id, (ok, _) in zip(member_ids, results, strict=True):
            if ok:
                self._add_member(keys, member_id)
            else:
                refused.append(member_id)
        if refused:
            raise exception.HostIdConflict(
                'Members %s of group %s are reported by other live '
                'processes; each member id may be used by one process at a '
                'time.' % (', '.join(refused[:10]), group))

    def _claim(self, keys: codec.Keys, member_id: str, tick: str) -> None:
        """Watch a held member id; take it over only if it stays silent."""
        timeout = self.opts.claim_timeout
        if timeout is None:
            timeout = 2 * self.conf.heartbeat.report_interval
        step = max(0.01, min(0.25, timeout / 8))
        deadline = time.monotonic() + timeout
        while True:
            with self._translated('join'):
                raw = self.client.zscore(keys.live, member_id)
            now = '' if raw is None else '%.0f' % raw
            if now != tick:
                break
            if time.monotonic() >= deadline:
                ok, tick = self._join_once(keys, member_id, True, tick)
                if ok:
                    LOG.info('Taking over %s/%s: unchanged for %.1fs.',
                             keys.group, member_id, timeout)
                    return
                break
            time.sleep(step)
        raise exception.HostIdConflict(
            'Member %s of group %s is being reported by another live '
            'process; each member id may be used by one process at a time. '
            'Stop the other one or choose another member id.'
            % (member_id, keys.group))

    def _publish_args(self, member: _Member, report: Report,
                      leave: bool) -> tuple[list[Any], object]:
        """Arguments of the publish script, and the state they carry."""
        data, state = member.encoder.encode(report)
        if len(data) > self._payload_limit:
            raise exception.PayloadTooLarge(
                'Report of %s/%s is %d bytes, above [heartbeat_redis] '
                'payload_limit (%d); publish a smaller payload or raise the '
                'limit.' % (report.group, report.member_id, len(data),
                            self._payload_limit))
        if state is not None:
            changed = state is not member.pushed_state
        else:
            state = codec.state_of(report)
            changed = state != member.pushed_state
        flag = scripts.publish_flag(leave, changed)
        return member.args.beat(report.seq, data, flag), state

    def _check_published(self, report: Report, member: _Member,
                         state: object, ok: Any) -> None:
        if not ok:
            raise exception.HostIdConflict(
                'Member %s of group %s was taken over by another process; '
                'not publishing. Each member id may be used by one process '
                'at a time.' % (report.member_id, report.group))
        member.pushed_state = state

    def _send(self, member: _Member, report: Report, leave: bool) -> None:
        args, state = self._publish_args(member, report, leave)
        with self._translated('publish', lost=True):
            ok = self._eval(self.client, scripts.PUBLISH, args)
            if ok == scripts.RESEND:
                ok = self._resend(member, report)
            if ok == scripts.NEW_OWNER:
                self._add_groups({member.keys.group})
        self._check_published(report, member, state, ok)

    def _resend(self, member: _Member, report: Report) -> Any:
        """Send a plain beat again as a change: its member had no owner."""
        LOG.info('Member %s/%s had no owner entry in redis (purged, or the '
                 'data was lost); publishing it as a new one.',
                 member.keys.group, report.member_id)
        return self._eval(self.client, scripts.PUBLISH,
                          _as_change(member, report))

    def publish_many(self, reports: Sequence[Report]) -> None:
        """Publish reports of many joined members in one round trip.

        For a process that reports for many members at once (a relay, a
        simulator): each report goes through the same server-side script
        as :meth:`publish`, pipelined.
        """
        with self._lock:
            members = [self._member(report) for report in reports]
        # Encoded (and sizes checked) before any is kept as the newest:
        # a report refused here never replaces a good one.
        queued = [(member, report, *self._publish_args(member, report, False))
                  for member, report in zip(members, reports, strict=True)]
        for member, report in zip(members, reports, strict=True):
            member.latest = report

        with self._translated('publish', lost=True):
            results = self._send_many(queued)
        for (member, report, _, state), ok in zip(queued, results,
                                                  strict=True):
            self._check_published(report, member, state, ok)
        self._refresh_groups()

    def _send_many(self, queued: Sequence[tuple[_Member, Report, list[Any],
                                                object]]) -> list[Any]:
        """Run the publish script for every queued report, pipelined.

        Members the server knows no owner of (data lost, purged) are sent
        again as changes, in a second pipelined round trip; the script's
        answers come back in the order of ``queued``.
        """
        def fill(pipe: Any) -> None:
            for _, _, args, _ in queued:
                self._eval(pipe, scripts.PUBLISH, args)

        results = self._execute(fill)
        again = [i for i, ok in enumerate(results) if ok == scripts.RESEND]
        if again:
            LOG.info('%d member(s) of this process had no owner entry in '
                     'redis (purged, or the data was lost); publishing them '
                     'as new ones.', len(again))

            def refill(pipe: Any) -> None:
                for i in again:
                    member, report, _, _ = queued[i]
                    self._eval(pipe, scripts.PUBLISH,
                               _as_change(member, report))
            for i, ok in zip(again, self._execute(refill), strict=True):
                results[i] = ok
        self._add_groups({queued[i][0].keys.group
                          for i, ok in enumerate(results)
                          if ok == scripts.NEW_OWNER})
        return results

    def publish(self, report: Report) -> None:
        # No lock: the members dict changes only under the lock, and one
        # lookup in it, like one attribute store, is atomic.
        member = self._member(report)
        if self.disconnected.is_set():
            # Refuses an oversized report before it is kept for the
            # republish: the last good one stays the newest.
            self._publish_args(member, report, False)
            member.latest = report
            raise exception.BackendError(
                'redis at %s is unreachable; reconnecting in the background '
                'and the newest report is republished on success.'
                % client_mod.describe(self.conf))
        previous, member.latest = member.latest, report
        try:
            self._send(member, report, False)
        except exception.PayloadTooLarge:
            member.latest = previous
            raise
        self._refresh_groups()

    def _refresh_groups(self) -> None:
        """Enter this process's groups in the groups set again, now and then.

        Once per service_down_time, so that a groups set lost on its own
        (on Redis Cluster, with the shard that held it) lists every live
        group again within that time, for observers that discover groups.
        A failure is retried at the next beat; the beat itself succeeded.
        """
        now = time.monotonic()
        if now < self._groups_due:
            return
        self._groups_due = now + self.conf.heartbeat.service_down_time
        with self._lock:
            groups = {group for group, _ in self._members}
        try:
            with self._translated('groups refresh'):
                self._add_groups(groups)
        except exception.BackendError as err:
            self._groups_due = now
            LOG.debug('%s', err)

    def leave(self, report: Report) -> None:
        with self._lock:
            member = self._member(report)
        self._send(member, report, True)
        with self._lock:
            self._members.pop((report.group, report.member_id), None)

    # -- cluster flags --

    def set_flag(self, name: str, value: str) -> None:
        base.check_flag(name, value)
        with self._translated('flag write'):
            stored = self._eval(
                self.client, scripts.SET_FLAG,
                [codec.flags_key(self.prefix), name, value,
                 base.MAX_OTHER_FLAGS, *base.KNOWN_FLAG_VALUES],
                numkeys=b'1')
        if not stored:
            raise base.too_many_flags(name)

    def get_flags(self) -> dict[str, str]:
        key = codec.flags_key(self.prefix)
        with self._translated('flag read'):
            raw = self.client.hgetall(key)
        return codec.decode_flags(raw, 'redis %s' % key)

    # -- observers --

    def snapshot(self, group: str | None = None,
                 since: Any = None) -> Snapshot:
        cursor = since if isinstance(since, codec.Cursor) else None
        if group is None and self.cluster:
            snap = self._cluster_snapshot(cursor)
        else:
            snap = self._read(group, cursor)
        if snap.complete:
            with self._translated('snapshot'):
                self._check_peers()
        return snap

    def _read(self, group: str | None,
              cursor: codec.Cursor | None) -> Snapshot:
        """One call of the snapshot script (a single server, or a group)."""
        args = reads.snapshot_args(
            self.prefix, group, cursor, new_epoch(),
            self.opts.member_ttl, self.opts.gone_retention,
            self.conf.heartbeat.service_down_time)
        with self._translated('snapshot'):
            reply = self._eval(self.client, scripts.SNAPSHOT, args)
            try:
                snap = reads.parse_reply(reply, cursor, parsed=True)
            except ValueError:
                # A record is not JSON: read again record by record, so
                # that the bad one is reported and the others are kept.
                args[reads.FORMAT_ARG] = 'pairs'
                reply = self._eval(self.client, scripts.SNAPSHOT, args)
                snap = reads.parse_reply(reply, cursor, parsed=False)
        return snap

    def _cluster_snapshot(self, cursor: codec.Cursor | None) -> Snapshot:
        """Every group on Redis Cluster: one read per group, on its shard.

        A group that comes back whole (its data was lost, or the cursor
        was too old) while others came back as changes makes the others
        read whole too, so that the snapshot is complete or incremental
        as one.
        """
        with self._translated('snapshot'):
            names = {codec.text(raw) for raw in self.client.smembers(
                codec.groups_key(self.prefix))}
        if cursor is not None:
            names.update(cursor.clocks)
        order = sorted(names)
        parts = [self._read(grp, cursor) for grp in order]
        if cursor is None:
            return reads.merged(order, parts, None, complete=True)
        # A group new to the cursor is read whole and is no loss.
        lost = any(part.complete and grp in cursor.clocks
                   for grp, part in zip(order, parts, strict=True))
        if lost:
            parts = [part if part.complete else self._read(grp, None)
                     for grp, part in zip(order, parts, strict=True)]
        return reads.merged(order, parts, cursor, complete=lost)

    def _check_peers(self) -> None:
        """Log when members of protocol 1 write under our prefix."""
        if self.client.exists(*codec.old_keys(self.prefix)):
            LOG.error('redis at %s holds heartbeat data of protocol 1 under '
                      '[heartbeat_redis] prefix %r: its members are not '
                      'seen by this observer (protocol %d). Upgrade them, '
                      'or move them to another prefix.',
                      client_mod.describe(self.conf), self.prefix,
                      codec.PROTOCOL)

    def listen(self, callback: Callable[[str], bool | None],
               batch: float = 0.0) -> Callable[[], None]:
        listener = ChangeListener(self.client, self.prefix, callback,
                                  self._backoff(), batch=batch)
        self._listeners.append(listener)
        listener.start()
        # Return once subscribed, so no change after listen() is missed.
        listener.subscribed.wait(max(1.0, self.opts.socket_timeout))

        def cancel() -> None:
            listener.cancel()
            if listener in self._listeners:
                self._listeners.remove(listener)

        return cancel


def _as_change(member: _Member, report: Report) -> list[Any]:
    """The publish arguments of a plain beat, sent again as a change."""
    return member.args.beat(report.seq, codec.encode(report),
                            scripts.CHANGED)
