"""Real redis servers for tests: plain, TLS, replicas, Sentinels, Cluster.

Each is a redis-server from the system package, on a free loopback port in
a directory of its own (see :mod:`heartbeat.testing.server`).
:func:`redis_command` talks to them without a client library, so readiness
and fault checks do not depend on the client under test.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import ssl
import subprocess
import time
from typing import Any
from typing import BinaryIO

from heartbeat import clock
from heartbeat.testing.fixture import Fixture
from heartbeat.testing.server import free_port
from heartbeat.testing.server import Server
from heartbeat.testing.server import ServerStartError


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


#: Hash slots of a Redis Cluster.
CLUSTER_SLOTS = 16384


class RedisClusterNode(RedisServer):
    """One master of a :class:`RedisCluster`, its bus on a port of its own.

    Ready as a process once it answers; the cluster as a whole is ready
    when :class:`RedisCluster` says so.  A restart keeps its cluster
    configuration (``nodes.conf``: its id and slots) but, without
    persistence, none of its data: a shard that lost its data.
    """

    kind = 'redis-cluster-node'

    def __init__(self, workdir: str, port: int | None = None,
                 password: str | None = None) -> None:
        super().__init__(workdir, port, password=password)
        self.bus_port = free_port()

    @property
    def hosts(self) -> str:
        """This node as an entry of [heartbeat_redis] cluster_nodes."""
        return '%s:%d' % (self.host, self.port)

    def command(self) -> list[str]:
        return [
            *super().command(),
            '--cluster-enabled', 'yes',
            '--cluster-port', str(self.bus_port),
            '--cluster-config-file',
            os.path.join(self.workdir, 'nodes.conf'),
            # A lost node is marked failed within a second or two.
            '--cluster-node-timeout', '1000']


class RedisCluster(Fixture):
    """A real Redis Cluster of ``masters`` nodes on loopback, no replicas.

    The slots are split evenly and the nodes introduced to each other with
    CLUSTER ADDSLOTSRANGE and CLUSTER MEET (no redis-cli needed); ready
    once every node says ``cluster_state:ok`` and knows every other one.
    """

    start_timeout = 30.0

    def __init__(self, workdir: str, masters: int = 3,
                 password: str | None = None) -> None:
        self.workdir = os.path.abspath(workdir)
        self.password = password
        self.nodes = [RedisClusterNode(os.path.join(self.workdir,
                                                    'node%d' % i),
                                       password=password)
                      for i in range(masters)]

    @property
    def hosts(self) -> list[str]:
        """The nodes as [heartbeat_redis] cluster_nodes."""
        return [node.hosts for node in self.nodes]

    @property
    def url(self) -> str:
        """A url for the credentials; the nodes come from cluster_nodes."""
        auth = ':%s@' % self.password if self.password else ''
        return 'redis://%s127.0.0.1:%d/0' % (auth, self.nodes[0].port)

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.start()
            share = CLUSTER_SLOTS // len(self.nodes)
            for i, node in enumerate(self.nodes):
                last = (CLUSTER_SLOTS - 1 if i == len(self.nodes) - 1
                        else (i + 1) * share - 1)
                node.execute('CLUSTER', 'ADDSLOTSRANGE', str(i * share),
                             str(last))
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.execute('CLUSTER', 'MEET', first.host, str(first.port),
                             str(first.bus_port))
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def ready(self) -> bool:
        """Whether every node serves and knows every other one."""
        try:
            infos = [node.execute('CLUSTER', 'INFO') for node in self.nodes]
        except (OSError, ValueError):
            return False
        known = 'cluster_known_nodes:%d' % len(self.nodes)
        return all('cluster_state:ok' in info and known in info
                   for info in infos)

    def wait_ready(self) -> None:
        if not clock.poll(self.ready, self.start_timeout, 0.05):
            raise ServerStartError(
                'Redis Cluster of %d nodes did not form within %.0fs: %s'
                % (len(self.nodes), self.start_timeout,
                   self.nodes[0].log_tail()))

    def node_of(self, key: str) -> RedisClusterNode:
        """The node that serves ``key``'s slot."""
        slot = int(self.nodes[0].execute('CLUSTER', 'KEYSLOT', key))
        share = CLUSTER_SLOTS // len(self.nodes)
        return self.nodes[min(slot // share, len(self.nodes) - 1)]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
