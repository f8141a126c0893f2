"""Real redis, ZooKeeper, etcd and memcached test servers with fault injection.

Each server runs from the system package (see bindep.txt) on a free
loopback port, in a directory of its own, and is stopped at the end::

    with RedisServer(tmpdir) as server:
        conf.set_override('url', server.url, group='heartbeat_redis')
        ...
        server.kill()          # kill -9, data is lost (no persistence)
        server.start()         # same port, same directory
        with server.paused():  # SIGSTOP ... SIGCONT
            ...

A server that cannot start raises :class:`ServerStartError`: a test that
needs it fails, it is never skipped.  Readiness is polled with a real
request, never guessed with a sleep.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import threading
import time
from types import TracebackType
from typing import Any
import urllib.error
import urllib.request

from heartbeat import exception
from heartbeat.testing.redis_servers import redis_command
from heartbeat.testing.redis_servers import RedisCluster
from heartbeat.testing.redis_servers import RedisReplyError
from heartbeat.testing.redis_servers import RedisSentinel
from heartbeat.testing.redis_servers import RedisServer
from heartbeat.testing.redis_servers import TLSFiles
from heartbeat.testing.server import free_port
from heartbeat.testing.server import Server
from heartbeat.testing.server import ServerStartError

# Every test server is importable from here; the redis ones and the base
# class live in modules of their own.
__all__ = [
    'EtcdServer', 'LivenessWatch', 'MemcachedServer', 'RedisCluster',
    'RedisReplyError',
    'RedisSentinel', 'RedisServer', 'Server', 'ServerStartError', 'TLSFiles',
    'ZooKeeperServer', 'free_port', 'redis_command',
]

ZKSERVER = '/usr/share/zookeeper/bin/zkServer.sh'


class ZooKeeperServer(Server):
    """A standalone ZooKeeper started with zkServer.sh start-foreground."""

    kind = 'zookeeper'
    start_timeout = 60.0

    def __init__(self, workdir: str, port: int | None = None,
                 tick_ms: int = 200) -> None:
        super().__init__(workdir, port)
        self.tick_ms = tick_ms
        self.config_path = os.path.join(self.workdir, 'zoo.cfg')
        self.data_dir = os.path.join(self.workdir, 'data')
        self.zk_log_dir = os.path.join(self.workdir, 'logs')

    @property
    def hosts(self) -> str:
        return '%s:%d' % (self.host, self.port)

    @property
    def url(self) -> str:
        return 'zookeeper://%s' % self.hosts

    def prepare(self) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        os.makedirs(self.zk_log_dir, exist_ok=True)
        with open(self.config_path, 'w', encoding='utf-8') as f:
            f.write('\n'.join([
                'tickTime=%d' % self.tick_ms,
                'initLimit=10',
                'syncLimit=5',
                'dataDir=%s' % self.data_dir,
                'clientPort=%d' % self.port,
                'clientPortAddress=%s' % self.host,
                'admin.enableServer=false',
                # Short sessions keep expiry tests fast.
                'minSessionTimeout=%d' % (2 * self.tick_ms),
                'maxSessionTimeout=60000',
                '4lw.commands.whitelist=srvr,ruok',
                '']))

    def command(self) -> list[str]:
        return [ZKSERVER, 'start-foreground', self.config_path]

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env['ZOO_LOG_DIR'] = self.zk_log_dir
        # zkEnv.sh pins the log directory; a later -D wins.
        env['JVMFLAGS'] = ('-Xmx256m -Dzookeeper.log.dir=%s '
                           '-Dzookeeper.root.logger=INFO,CONSOLE'
                           % self.zk_log_dir)
        return env

    def ping(self) -> bool:
        with socket.create_connection((self.host, self.port), 1.0) as sock:
            sock.sendall(b'srvr')
            data = b''
            while chunk := sock.recv(4096):
                data += chunk
        return b'Mode: standalone' in data

    def expire_session(self, client_id: tuple[int, bytes],
                       timeout: float = 10.0) -> None:
        """Expire the session ``client_id`` (a KazooClient.client_id).

        A second client attaches to the same session and closes it, which
        ends the session on the server: the first client's ephemeral nodes
        vanish and it is told its session expired.  The first client may
        take its session back before the close gets through (the server
        drops whichever connection attached last): the close is repeated
        until a client that attaches is told that the session is gone.
        """
        from kazoo.client import KazooClient
        from kazoo.handlers.threading import KazooTimeoutError

        session_id, password = client_id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            other = KazooClient(hosts=self.hosts,
                                client_id=(session_id, password),
                                timeout=timeout,
                                connection_retry={'max_tries': -1,
                                                  'delay': 0.05,
                                                  'max_delay': 0.2})
            try:
                other.start(max(0.1, deadline - time.monotonic()))
            except KazooTimeoutError:
                expired = False
            else:
                expired = other.client_id[0] != session_id
            finally:
                # Closes the session when attached to it.
                other.stop()
                other.close()
            if expired:
                return
        raise TimeoutError('session %#x of ZooKeeper at %s did not expire '
                           'within %.1fs' % (session_id, self.hosts, timeout))


class EtcdServer(Server):
    """A single-member etcd (Debian etcd-server) on loopback ports."""

    kind = 'etcd'
    start_timeout = 30.0

    def __init__(self, workdir: str, port: int | None = None,
                 peer_port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.peer_port = peer_port or free_port()
        self.data_dir = os.path.join(self.workdir, 'data')

    @property
    def endpoint(self) -> str:
        return 'http://%s:%d' % (self.host, self.port)

    @property
    def url(self) -> str:
        """The tooz URL of this server."""
        return 'etcd3+http://%s:%d' % (self.host, self.port)

    def command(self) -> list[str]:
        peer = 'http://%s:%d' % (self.host, self.peer_port)
        return ['etcd', '--name', 'hb', '--data-dir', self.data_dir,
                '--listen-client-urls', self.endpoint,
                '--advertise-client-urls', self.endpoint,
                '--listen-peer-urls', peer,
                '--initial-advertise-peer-urls', peer,
                '--initial-cluster', 'hb=%s' % peer,
                '--initial-cluster-state', 'new',
                '--heartbeat-interval', '50', '--election-timeout', '500',
                '--log-level', 'warn']

    def request(self, path: str, body: dict[str, Any] | None = None,
                timeout: float = 2.0) -> dict[str, Any]:
        """POST ``body`` (GET without one) to the v3 JSON gateway."""
        data = json.dumps(body).encode() if body is not None else None
        # The endpoint is always http://127.0.0.1:<port>.
        req = urllib.request.Request(  # noqa: S310
            self.endpoint + path, data=data)
        opened = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310
        with opened as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def ping(self) -> bool:
        try:
            return self.request('/health').get('health') == 'true'
        except urllib.error.URLError:
            return False

    def leases(self) -> list[int]:
        """Ids of every lease the server holds."""
        found = self.request('/v3/lease/leases', {}).get('leases', [])
        return [int(lease['ID']) for lease in found]

    def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease at once, as if it had expired: its keys vanish."""
        self.request('/v3/lease/revoke', {'ID': lease_id})


class LivenessWatch:
    """Judges a group's members continuously while faults are injected.

    A thread reads ``group`` through ``driver`` every ``interval`` seconds
    (incrementally when the driver can), folds each read into a
    :class:`~heartbeat.monitor.repository.Repository` and records every
    moment a member is judged DOWN.  Failed reads are counted; the members
    are still judged on what was last read, as a real observer would.
    """

    def __init__(self, driver: Any, group: str, down_time: float,
                 interval: float = 0.05) -> None:
        from heartbeat.drivers.base import Capability
        from heartbeat.monitor.repository import Repository

        self.driver = driver
        self.group = group
        self.interval = interval
        self.repository = Repository(down_time)
        self.incremental = Capability.INCREMENTAL in driver.capabilities
        self.downs: list[tuple[str, float]] = []
        self.failed_reads = 0
        self.reads = 0
        self._cursor: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> None:
        since = self._cursor if self.incremental else None
        try:
            snap = self.driver.snapshot(self.group, since=since)
        except exception.HeartbeatError:
            self.failed_reads += 1
            return
        with self._lock:
            self.repository.apply(snap, time.monotonic(), self.group)
            self._cursor = snap.cursor
            self.reads += 1

    def _run(self) -> None:
        from heartbeat.model import Status

        while not self._stop.wait(self.interval):
            self._read()
            now = time.monotonic()
            with self._lock:
                for member in self.repository.members(self.group, now):
                    if member.status is Status.DOWN:
                        self.downs.append((member.member_id, now))

    def reports(self) -> dict[str, Any]:
        """member_id -> newest report read."""
        with self._lock:
            return {m.member_id: m.report for m in
                    self.repository.members(self.group, time.monotonic())}

    def wait_for(self, predicate: Any, timeout: float) -> float:
        """Seconds until ``predicate(reports())`` held; raises on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate(self.reports()):
                return time.monotonic() - start
            time.sleep(self.interval / 2)
        raise AssertionError('condition not met within %.1fs; last reads: '
                             '%r' % (timeout, self.reports()))

    def __enter__(self) -> LivenessWatch:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


class MemcachedServer(Server):
    """memcached: everything in memory, so a kill -9 or a restart loses it.

    memcached counts expiry times in whole seconds on its own clock, which
    it advances once a second: a key given N seconds to live vanishes
    between N - 1 and N seconds after it was set.
    """

    kind = 'memcached'
    start_timeout = 15.0

    @property
    def url(self) -> str:
        """The tooz URL of this server."""
        return 'memcached://%s:%d' % (self.host, self.port)

    def command(self) -> list[str]:
        # memcached refuses to run as root without --user and ignores it
        # otherwise: keep the identity the tests run as.
        user = pwd.getpwuid(os.getuid()).pw_name
        return ['memcached', '--listen', self.host, '--port', str(self.port),
                '--udp-port', '0', '--memory-limit', '64', '--user', user,
                '--verbose']

    def ping(self) -> bool:
        with socket.create_connection((self.host, self.port), 1.0) as sock:
            sock.sendall(b'version\r\n')
            return sock.recv(64).startswith(b'VERSION ')
