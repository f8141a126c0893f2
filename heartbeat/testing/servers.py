"""Real redis, ZooKeeper and etcd servers for tests, with fault injection.

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

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import Any
import urllib.error
import urllib.request

from heartbeat import exception
from heartbeat.testing import fixture

ZKSERVER = '/usr/share/zookeeper/bin/zkServer.sh'


class ServerStartError(exception.HeartbeatError):
    """A test server could not be started."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        port: int = sock.getsockname()[1]
        return port


class Server(fixture.Pausable):
    """A server process on a fixed loopback port in its own directory."""

    #: Human name used in error messages.
    kind = 'server'
    #: Seconds to wait for the server to answer after a start.
    start_timeout = 30.0

    def __init__(self, workdir: str, port: int | None = None) -> None:
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = port or free_port()
        self.host = '127.0.0.1'
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.workdir, '%s.log' % self.kind)
        self.starts = 0

    # -- to be provided by subclasses ---------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environ(self) -> dict[str, str]:
        return dict(os.environ)

    def ping(self) -> bool:
        """True when the server answers a real request."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration before the first start."""

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or restart) on the same port and directory; wait ready."""
        if self.running:
            return
        binary = self.command()[0]
        if shutil.which(binary) is None and not os.path.exists(binary):
            raise ServerStartError(
                '%s is not installed (%s not found); install the system '
                'packages listed in bindep.txt.' % (self.kind, binary))
        self.prepare()
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.environ(),
                stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self.starts += 1
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            if not self.running:
                raise ServerStartError(
                    '%s exited while starting on port %d: %s'
                    % (self.kind, self.port, self.log_tail()))
            try:
                if self.ping():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(
            '%s did not answer on port %d within %.0fs: %s'
            % (self.kind, self.port, timeout or self.start_timeout,
               self.log_tail()))

    def log_tail(self, size: int = 2000) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return '(no log)'

    def _signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM), killing after ``timeout``."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9 the server (no clean shutdown)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self, hard: bool = True) -> None:
        """kill -9 (or stop with ``hard=False``) and start on the same port."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self._signal_group(signal.SIGCONT)


class RedisServer(Server):
    """redis-server without persistence: a kill -9 loses every key."""

    kind = 'redis'
    start_timeout = 15.0

    def __init__(self, workdir: str, port: int | None = None,
                 password: str | None = None) -> None:
        super().__init__(workdir, port)
        self.password = password

    @property
    def url(self) -> str:
        auth = ':%s@' % self.password if self.password else ''
        return 'redis://%s%s:%d/0' % (auth, self.host, self.port)

    def command(self) -> list[str]:
        cmd = ['redis-server', '--port', str(self.port), '--bind', self.host,
               '--dir', self.workdir, '--save', '', '--appendonly', 'no',
               '--protected-mode', 'no', '--daemonize', 'no']
        if self.password:
            cmd += ['--requirepass', self.password]
        return cmd

    def ping(self) -> bool:
        with socket.create_connection((self.host, self.port), 1.0) as sock:
            if self.password:
                sock.sendall(b'AUTH %s\r\n' % self.password.encode())
                sock.recv(64)
            sock.sendall(b'PING\r\n')
            return sock.recv(64).startswith(b'+PONG')


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
        vanish and it is told its session expired.
        """
        from kazoo.client import KazooClient

        session_id, password = client_id
        other = KazooClient(hosts=self.hosts, client_id=(session_id,
                                                         password),
                            timeout=timeout)
        other.start(timeout)
        try:
            other.stop()
        finally:
            other.close()


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
