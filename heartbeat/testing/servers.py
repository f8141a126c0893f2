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

import contextlib
import dataclasses
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from types import TracebackType
from typing import Any
from typing import BinaryIO
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


class RedisReplyError(ValueError):
    """redis answered a command with an error reply."""


def _encode_command(args: tuple[str, ...]) -> bytes:
    parts = [b'*%d\r\n' % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b'$%d\r\n%s\r\n' % (len(data), data))
    return b''.join(parts)


def _read_reply(reader: BinaryIO) -> Any:
    """One RESP2 reply: a str, an int, None or a list of them."""
    line = reader.readline()
    if not line.endswith(b'\r\n'):
        raise ConnectionError('redis closed the connection')
    kind, rest = line[:1], line[1:-2].decode('utf-8', 'replace')
    if kind == b'+':
        return rest
    if kind == b'-':
        raise RedisReplyError(rest)
    if kind == b':':
        return int(rest)
    if kind not in (b'$', b'*'):
        raise RedisReplyError('unexpected reply %r' % line[:40])
    size = int(rest)
    if size < 0:
        return None
    if kind == b'$':
        return reader.read(size + 2)[:-2].decode('utf-8', 'replace')
    return [_read_reply(reader) for _ in range(size)]


def redis_command(address: tuple[str, int], *args: str,
                  password: str | None = None, tls: TLSFiles | None = None,
                  timeout: float = 1.0) -> Any:
    """The reply of the redis at ``address`` to one command.

    AUTH is sent first when ``password`` is given; with ``tls`` the
    connection is TLS, the server verified by that CA and the client
    certificate presented.  An error reply raises :class:`RedisReplyError`.
    """
    sock = socket.create_connection(address, timeout)
    try:
        if tls is not None:
            sock = tls.client_context().wrap_socket(
                sock, server_hostname=address[0])
        commands = ([('AUTH', password)] if password else []) + [args]
        sock.sendall(b''.join(_encode_command(c) for c in commands))
        with sock.makefile('rb') as reader:
            replies = [_read_reply(reader) for _ in commands]
        return replies[-1]
    finally:
        sock.close()


class RedisServer(Server):
    """redis-server without persistence: a kill -9 loses every key.

    With ``tls`` it listens for TLS only (no plain port), with the server
    certificate of those files; ``tls_auth_clients`` is redis's setting of
    that name: 'no', 'yes' (a client certificate signed by the CA is
    required) or 'optional'.  With ``replica_of`` it starts as a replica of
    that plain-TCP server, authenticated with its password, and is ready
    once its first sync is done.
    """

    kind = 'redis'
    start_timeout = 15.0

    def __init__(self, workdir: str, port: int | None = None,
                 password: str | None = None, tls: TLSFiles | None = None,
                 tls_auth_clients: str = 'no',
                 replica_of: RedisServer | None = None) -> None:
        super().__init__(workdir, port)
        self.password = password
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self.replica_of = replica_of

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        scheme = 'rediss' if self.tls else 'redis'
        auth = ':%s@' % self.password if self.password else ''
        return '%s://%s%s:%d/0' % (scheme, auth, self.host, self.port)

    def command(self) -> list[str]:
        cmd = ['redis-server', '--bind', self.host,
               '--dir', self.workdir, '--save', '', '--appendonly', 'no',
               '--protected-mode', 'no', '--daemonize', 'no',
               # A replica's first sync starts at once rather than 5 s on.
               '--repl-diskless-sync-delay', '0']
        if self.tls is None:
            cmd += ['--port', str(self.port)]
        else:
            cmd += ['--port', '0', '--tls-port', str(self.port),
                    '--tls-cert-file', self.tls.server_cert_file,
                    '--tls-key-file', self.tls.server_key_file,
                    '--tls-ca-cert-file', self.tls.ca_file,
                    '--tls-auth-clients', self.tls_auth_clients]
        if self.password:
            cmd += ['--requirepass', self.password]
        if self.replica_of is not None:
            cmd += ['--replicaof', self.replica_of.host,
                    str(self.replica_of.port)]
            if self.replica_of.password:
                cmd += ['--masterauth', self.replica_of.password]
        return cmd

    def execute(self, *args: str) -> Any:
        """The reply of this server to one command (see redis_command)."""
        return redis_command(self.address, *args, password=self.password,
                             tls=self.tls)

    def ping(self) -> bool:
        if self.execute('PING') != 'PONG':
            return False
        if self.replica_of is None:
            return True
        return 'master_link_status:up' in self.execute('INFO', 'replication')


OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = heartbeat test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(cwd: str, *args: str) -> None:
    if shutil.which('openssl') is None:
        raise ServerStartError(
            'openssl is not installed; the TLS test servers need it to make '
            'their certificates (install the openssl package).')
    done = subprocess.run(['openssl', *args], cwd=cwd, capture_output=True,
                          check=False)
    if done.returncode != 0:
        raise ServerStartError('openssl %s failed: %s' % (
            args[0], done.stderr.decode('utf-8', 'replace')[-2000:]))


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """PEM files of a throwaway CA and of the two certificates it signed.

    The server certificate is valid for 127.0.0.1 and localhost, the
    client one for TLS client authentication.  Keys are not encrypted.
    """

    ca_file: str
    server_cert_file: str
    server_key_file: str
    client_cert_file: str
    client_key_file: str

    @classmethod
    def create(cls, directory: str, days: int = 2) -> TLSFiles:
        """A new CA and its certificates, written in ``directory``.

        Made with the openssl command: ServerStartError when it is missing
        or fails.  ECDSA P-256 keys make this take milliseconds.
        """
        directory = os.path.abspath(directory)
        os.makedirs(directory, exist_ok=True)
        config = os.path.join(directory, 'openssl.cnf')
        with open(config, 'w', encoding='utf-8') as f:
            f.write(OPENSSL_CONFIG)
        new_key = ['-config', config, '-newkey', 'ec', '-pkeyopt',
                   'ec_paramgen_curve:prime256v1', '-nodes']
        _openssl(directory, 'req', '-x509', '-new', *new_key,
                 '-extensions', 'ca', '-days', str(days),
                 '-subj', '/CN=heartbeat test CA',
                 '-keyout', 'ca.key', '-out', 'ca.crt')
        for name, subject in (('server', '/CN=127.0.0.1'),
                              ('client', '/CN=heartbeat test client')):
            _openssl(directory, 'req', '-new', *new_key, '-subj', subject,
                     '-keyout', name + '.key', '-out', name + '.csr')
            _openssl(directory, 'x509', '-req', '-in', name + '.csr',
                     '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
                     '-days', str(days), '-extfile', config,
                     '-extensions', name, '-out', name + '.crt')

        def path(name: str) -> str:
            return os.path.join(directory, name)

        return cls(ca_file=path('ca.crt'),
                   server_cert_file=path('server.crt'),
                   server_key_file=path('server.key'),
                   client_cert_file=path('client.crt'),
                   client_key_file=path('client.key'))

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server by this CA; presents the client certificate."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context


class RedisSentinel(RedisServer):
    """A redis Sentinel monitoring ``master`` as ``service``, quorum 1.

    Every instance of the service is expected to use the master's password
    (Sentinel has one auth-pass per service).  The timing is shortened at
    each start (SENTINEL DEBUG, redis 7.0 and later): with the defaults a
    demoted master keeps taking writes for about ten seconds after a
    failover, here :meth:`failover` completes in about two.  The
    configuration file is written before the first start only: Sentinel
    rewrites it with what it learns and reads that back on a restart.
    """

    kind = 'sentinel'

    def __init__(self, workdir: str, master: RedisServer,
                 service: str = 'mymaster', port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.master = master
        self.service = service
        self.config_path = os.path.join(self.workdir, 'sentinel.conf')

    @property
    def hosts(self) -> str:
        """This Sentinel as an entry of [heartbeat_redis] sentinel_hosts."""
        return '%s:%d' % self.address

    def prepare(self) -> None:
        if os.path.exists(self.config_path):
            return
        name = self.service
        lines = ['port %d' % self.port, 'bind %s' % self.host,
                 'dir %s' % self.workdir,
                 'sentinel monitor %s %s %d 1' % (name, self.master.host,
                                                  self.master.port),
                 'sentinel down-after-milliseconds %s 1000' % name,
                 'sentinel failover-timeout %s 10000' % name]
        if self.master.password:
            lines.append('sentinel auth-pass %s %s' % (name,
                                                       self.master.password))
        with open(self.config_path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')

    def command(self) -> list[str]:
        return ['redis-server', self.config_path, '--sentinel']

    def start(self) -> None:
        super().start()
        # Milliseconds.  INFO every 0.1 s (default 10 s) sees a promotion at
        # once; a demoted master is reconfigured four publish periods after
        # the switch (default 2 s each).
        try:
            self.execute('SENTINEL', 'DEBUG', 'info-period', '100',
                         'publish-period', '100')
        except RedisReplyError as err:
            self.stop()
            raise ServerStartError(
                'sentinel on port %d refused SENTINEL DEBUG (%s); redis '
                '7.0 or later is needed.' % (self.port, err)) from err

    def ping(self) -> bool:
        # Ready once linked to the master, not merely listening.
        flags = self.master_state().get('flags', 'disconnected')
        return 'disconnected' not in flags.split(',')

    def master_state(self) -> dict[str, str]:
        """What this Sentinel knows of the master (SENTINEL MASTER)."""
        reply = self.execute('SENTINEL', 'MASTER', self.service)
        return dict(zip(reply[::2], reply[1::2], strict=True))

    def master_address(self) -> tuple[str, int]:
        """The master this Sentinel currently names."""
        host, port = self.execute('SENTINEL', 'GET-MASTER-ADDR-BY-NAME',
                                  self.service)
        return host, int(port)

    def _role(self, address: tuple[str, int]) -> str | None:
        try:
            role: str = redis_command(address, 'ROLE',
                                      password=self.master.password)[0]
        except (OSError, RedisReplyError):
            return None
        return role

    def failover(self, timeout: float = 15.0) -> tuple[str, int]:
        """Promote a replica; the new master's address once it is done.

        Done means this Sentinel names the new master and the old one has
        been turned into a replica, so no client can write to it any more.
        Raises TimeoutError when that takes longer than ``timeout``.
        """
        old = self.master_address()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute('SENTINEL', 'FAILOVER', self.service)
                break
            except RedisReplyError as err:
                # NOGOODSLAVE until the Sentinel has seen a synced replica.
                if (not str(err).startswith('NOGOODSLAVE')
                        or time.monotonic() > deadline):
                    raise
            time.sleep(0.05)
        while time.monotonic() < deadline:
            new = self.master_address()
            if new != old and self._role(old) == 'slave':
                return new
            time.sleep(0.05)
        raise TimeoutError(
            'failover of %s not done within %.0fs (master %s:%d): %s'
            % (self.service, timeout, *self.master_address(),
               self.log_tail()))


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
