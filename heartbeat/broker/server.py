"""The broker's local RPC server: a unix socket, one thread per client.

The socket is created with mode 0660 (and optionally handed to a group);
every connection's peer credentials (``SO_PEERCRED``) are checked against
root, the broker's own uid, and the allowed uids/gids before any frame is
read.  A client that sends a frame the decoder cannot trust gets an error
reply and is disconnected; every other failure is one error reply.

Slow and idle clients cannot lock callers out (see
:class:`ConnectionTable`): a request must arrive whole, and its answer be
taken, within the read timeout; a connection without a request for the idle
timeout is closed; and once fewer than the reserved connections are free,
each new connection closes the stalest one that is not in a call, so that
a fresh well-formed call is always served.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
import dataclasses
import grp
import os
import socket
import stat
import struct
import threading
import time
from typing import Any

from oslo_log import log as logging

from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat import exception

LOG = logging.getLogger(__name__)

PEERCRED = struct.Struct('3i')
#: Returns the allowed (uids, gids).
AllowedIds = Callable[[], tuple[Iterable[int], Iterable[int]]]
RECV_SIZE = 65536


@dataclasses.dataclass(frozen=True)
class Peer:
    """Credentials of a connected client process."""

    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                          PEERCRED.size)
    return Peer(*PEERCRED.unpack(raw))


class Authorizer:
    """Decides whether a peer may call the broker.

    ``allowed`` returns the current (uids, gids); it is called per
    connection so that a configuration reload takes effect at once.
    """

    def __init__(self, allowed: AllowedIds) -> None:
        self.allowed = allowed

    def permits(self, peer: Peer) -> bool:
        if peer.uid in (0, os.getuid()):
            return True
        uids, gids = self.allowed()
        return peer.uid in set(uids) or peer.gid in set(gids)


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """How many connections the server keeps, and for how long.

    ``reserved`` of the ``max_connections`` are kept free for new callers
    (at most ``max_connections - 1`` are).  ``read_timeout`` bounds the time
    from connecting, or from the first byte of a request, to the request's
    last byte, and the time a client may take to read its answer.
    ``idle_timeout`` bounds the time between two requests.
    """

    max_connections: int = 64
    reserved: int = 8
    read_timeout: float = 2.0
    idle_timeout: float = 60.0

    @classmethod
    def from_options(cls, group: Any) -> ConnectionLimits:
        """The limits in a ``[broker]`` option group."""
        return cls(max_connections=group.max_connections,
                   reserved=group.reserved_connections,
                   read_timeout=group.client_read_timeout,
                   idle_timeout=group.client_idle_timeout)

    @property
    def soft_limit(self) -> int:
        """Open connections above which each new one closes the stalest."""
        return self.max_connections - min(self.reserved,
                                          self.max_connections - 1)


@dataclasses.dataclass
class _Entry:
    progress: float
    frame_started: float | None = None
    in_call: bool = False
    served: int = 0


class ConnectionTable:
    """Which connections to keep, which to close: pure bookkeeping.

    Connections are keyed by any hashable (the server uses the socket);
    every method takes the current monotonic time, so the rules are tested
    without sockets or sleeps.  A connection's staleness is the time since
    its last whole request (or since it connected): a client that sends one
    byte at a time, or nothing, never makes progress, while a working
    caller does on every call.  Connections in a call are never chosen.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def admit(self, key: Hashable, now: float,
              limits: ConnectionLimits) -> list[Hashable] | None:
        """Add ``key``; the connections to close for it, or None if full.

        None means every connection is in a call and the table is at
        ``max_connections``: refuse the new one.
        """
        victims: list[Hashable] = []
        while len(self._entries) >= limits.soft_limit:
            victim = self._stalest()
            if victim is None:
                break
            del self._entries[victim]
            victims.append(victim)
        if len(self._entries) >= limits.max_connections:
            return None
        self._entries[key] = _Entry(progress=now)
        return victims

    def _stalest(self) -> Hashable | None:
        candidates = [(entry.progress, key)
                      for key, entry in self._entries.items()
                      if not entry.in_call]
        if not candidates:
            return None
        return min(candidates, key=lambda item: item[0])[1]

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` (closed, or evicted already)."""
        self._entries.pop(key, None)

    def received(self, key: Hashable, now: float, requests: int,
                 pending: int) -> None:
        """``requests`` whole requests arrived; ``pending`` bytes wait."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if requests:
            entry.progress = now
            entry.served += requests
            entry.frame_started = None
        if pending and entry.frame_started is None:
            entry.frame_started = now
        elif not pending:
            entry.frame_started = None

    def set_in_call(self, key: Hashable, in_call: bool, now: float) -> None:
        """Mark ``key`` as running a call (never closed meanwhile)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.in_call = in_call
            if not in_call:
                entry.progress = now

    def remaining(self, key: Hashable, now: float,
                  limits: ConnectionLimits) -> float:
        """Seconds ``key`` may still wait for its next bytes (<= 0: close).

        Until its first whole request, and while a request is incomplete,
        the read timeout applies; between requests, the idle timeout.
        """
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        if entry.frame_started is not None:
            return entry.frame_started + limits.read_timeout - now
        if not entry.served:
            return entry.progress + limits.read_timeout - now
        return entry.progress + limits.idle_timeout - now


class RPCServer:
    """Serves a :class:`Dispatcher` on a unix socket until stopped.

    ``limits`` returns the current :class:`ConnectionLimits`; it is called
    on every accept and every wait for bytes, so that a reload takes effect
    at once.  Without it, the defaults apply with ``max_connections``.
    :attr:`counters` counts the connections refused, evicted and timed out.
    """

    def __init__(self, path: str, dispatcher: Dispatcher,
                 authorizer: Authorizer, max_connections: int = 64,
                 max_frame: int = protocol.DEFAULT_MAX_FRAME,
                 group: str | None = None,
                 limits: Callable[[], ConnectionLimits] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.dispatcher = dispatcher
        self.authorizer = authorizer
        self.max_connections = max_connections
        self.max_frame = max_frame
        self.group = group
        fixed = ConnectionLimits(max_connections=max_connections)
        self.limits = limits or (lambda: fixed)
        self.clock = clock
        self.counters = {'refused': 0, 'evicted': 0, 'timed_out': 0}
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clients = ConnectionTable()
        self._socks: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Bind the socket (0660) and start accepting."""
        self._stopping.clear()
        self._sock = self._bind()
        self._thread = threading.Thread(target=self._accept_loop,
                                        name='broker-rpc-accept',
                                        daemon=True)
        self._thread.start()
        LOG.info('Broker RPC listening on %s', self.path)

    def _bind(self) -> socket.socket:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise exception.ConfigError(
                'Directory %s of [broker] socket_path does not exist; create '
                'it (systemd: RuntimeDirectory=heartbeat) or change the '
                'option.' % directory)
        self._remove_stale()
        # Bind under a temporary name and rename, so that the socket is
        # never reachable with the process umask's permissions.
        tmp = '%s.%d.tmp' % (self.path, os.getpid())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            sock.bind(tmp)
            os.chmod(tmp, 0o660)
            if self.group:
                os.chown(tmp, -1, grp.getgrnam(self.group).gr_gid)
            os.rename(tmp, self.path)
            # A deep backlog: slow clients that the server closes come back
            # at once, and a caller must queue behind them, not fail with
            # EAGAIN.
            sock.listen(1024)
        except (OSError, KeyError) as err:
            sock.close()
            raise exception.ConfigError(
                'Cannot listen on %s: %s. Check [broker] socket_path and '
                'socket_group.' % (self.path, err)) from err
        return sock

    def _remove_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise exception.ConfigError(
                '%s exists and is not a socket; remove it or change [broker] '
                'socket_path.' % self.path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)  # nobody listens: left over from a crash
            return
        finally:
            probe.close()
        raise exception.ConfigError(
            'Another broker is already listening on %s; stop it first or '
            'change [broker] socket_path.' % self.path)

    def stop(self) -> None:
        """Stop accepting, disconnect every client, remove the socket."""
        self._stopping.set()
        sock = self._sock
        if sock is not None:
            self._wake_accept()
            if self._thread is not None:
                self._thread.join(timeout=5.0)
                self._thread = None
            self._sock = None
            sock.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        with self._lock:
            clients = list(self._socks)
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    def _wake_accept(self) -> None:
        # Closing a listening socket does not wake a blocked accept() in
        # every runtime (eventlet); a connection always does.
        waker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            waker.settimeout(1.0)
            waker.connect(self.path)
        except OSError:
            pass  # the accept loop is gone already
        finally:
            waker.close()

    # -- serving -----------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                client, _ = sock.accept()
                if self._stopping.is_set():
                    client.close()
                    return
            except OSError:
                if self._stopping.is_set():
                    return
                LOG.exception('Broker RPC accept failed; carrying on')
                continue
            try:
                self._admit(client)
            except Exception:
                # One connection's failure (no thread left, limits that
                # cannot be read) must not end the accept loop.
                LOG.exception('Cannot serve a broker RPC connection; '
                              'closing it and carrying on')
                with self._lock:
                    self._clients.discard(client)
                    self._socks.discard(client)
                client.close()

    def _admit(self, client: socket.socket) -> None:
        limits = self.limits()
        with self._lock:
            victims = self._clients.admit(client, self.clock(), limits)
            if victims is not None:
                self._socks.add(client)
                self.counters['evicted'] += len(victims)
            else:
                self.counters['refused'] += 1
        if victims is None:
            self._refuse(client, 'Busy',
                         'all %d connections of the broker are in a call '
                         '([broker] max_connections); retry later'
                         % limits.max_connections)
            return
        for victim in victims:
            LOG.debug('Closing the stalest broker RPC connection to make '
                      'room for a new caller')
            self._hang_up(victim)
        threading.Thread(target=self._serve, args=(client,),
                         name='broker-rpc-client', daemon=True).start()

    @staticmethod
    def _hang_up(client: Any) -> None:
        # Its thread sees end of file and closes it.
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    @staticmethod
    def _refuse(client: socket.socket, kind: str, message: str) -> None:
        try:
            # A client that reads nothing must not hold the caller up.
            client.settimeout(0.1)
            client.sendall(protocol.error_response(None, kind, message))
        except OSError:
            pass  # the client is gone already; nothing to tell it
        finally:
            client.close()

    def _serve(self, client: socket.socket) -> None:
        try:
            peer = peer_of(client)
            if not self.authorizer.permits(peer):
                LOG.warning('Refusing broker RPC from pid %d uid %d gid %d: '
                            'not in [broker] allowed_uids/allowed_gids.',
                            peer.pid, peer.uid, peer.gid)
                self._refuse(client, 'PermissionDenied',
                             'uid %d / gid %d may not call this broker; add '
                             'it to [broker] allowed_uids or allowed_gids'
                             % (peer.uid, peer.gid))
                return
            self._converse(client)
        except OSError as err:
            LOG.debug('Broker RPC client went away: %s', err)
        finally:
            with self._lock:
                self._clients.discard(client)
                self._socks.discard(client)
            client.close()

    def _converse(self, client: socket.socket) -> None:
        decoder = protocol.FrameDecoder(self.max_frame)
        while not self._stopping.is_set():
            data = self._receive(client)
            if not data:
                return
            try:
                frames = decoder.feed(data)
            except errors.ProtocolError as err:
                client.sendall(protocol.error_response(
                    None, 'ProtocolError', str(err)))
                return
            with self._lock:
                self._clients.received(client, self.clock(), len(frames),
                                       decoder.pending)
            for frame in frames:
                self._answer(client, frame)

    def _receive(self, client: socket.socket) -> bytes:
        """The next bytes of ``client``; empty once it must be closed."""
        while True:
            limits = self.limits()
            with self._lock:
                left = self._clients.remaining(client, self.clock(), limits)
                timed_out = left <= 0 and client in self._clients
                if timed_out:
                    self.counters['timed_out'] += 1
            if left <= 0:
                if timed_out:
                    LOG.debug('Closing a broker RPC connection that sent no '
                              'whole request in time')
                return b''
            # Wait at most a second at a time, so that a reload that
            # shortens the timeouts applies to waiting connections too.
            client.settimeout(min(left, 1.0))
            try:
                return client.recv(RECV_SIZE)
            except TimeoutError:
                continue

    def _answer(self, client: socket.socket, frame: protocol.Frame) -> None:
        if frame.kind != protocol.REQUEST:
            reply = protocol.error_response(
                None, 'BadRequest', 'expected a request frame')
        else:
            with self._lock:
                self._clients.set_in_call(client, True, self.clock())
            try:
                reply = self.dispatcher.dispatch(frame.body)
            finally:
                with self._lock:
                    self._clients.set_in_call(client, False, self.clock())
        # A client that does not take its answer is as slow as one that
        # does not send its request.
        client.settimeout(self.limits().read_timeout)
        client.sendall(reply)
