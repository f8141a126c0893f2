"""The broker's local RPC server: a unix socket, one thread per caller.

The socket is created with mode 0660 (and optionally handed to a group);
every connection's peer credentials (``SO_PEERCRED``) are checked against
root, the broker's own uid, and the allowed uids/gids before any frame is
read.  A client that sends a frame the decoder cannot trust gets an error
reply and is disconnected; every other failure is one error reply.

Slow and idle clients cannot lock callers out (see
:class:`~heartbeat.broker.admission.ConnectionTable`): a request must arrive
whole, and its answer be taken, within the read timeout; a connection
without a request for the idle timeout is closed; and once fewer than the
reserved connections are free, each new connection closes the stalest one
not in a call of the process that holds the most, so that a fresh
well-formed call is always served.  A call lasts until its answer is sent.

One selector thread accepts every connection, checks its credentials and
reads it until its first whole request; only then does the connection get
a thread of its own.  A slow client therefore costs a file descriptor and
a table entry, never a thread start, and the accept queue drains at the
speed of a few system calls per connection however fast slow clients
reconnect: a fresh caller does not wait long behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
import grp
import os
import selectors
import socket
import stat
import struct
import threading
import time
from typing import Any

from oslo_log import log as logging

from heartbeat.broker.admission import ConnectionLimits
from heartbeat.broker.admission import ConnectionTable
from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat import exception

__all__ = ['Authorizer', 'ConnectionLimits', 'ConnectionTable', 'Peer',
           'RPCServer', 'peer_of']

LOG = logging.getLogger(__name__)

PEERCRED = struct.Struct('3i')
#: Returns the allowed (uids, gids).
AllowedIds = Callable[[], tuple[Iterable[int], Iterable[int]]]
RECV_SIZE = 65536
#: Seconds between two checks of the read timeout of connections that have
#: not sent a whole request yet (the selector thread's longest sleep).
SWEEP_INTERVAL = 0.05
#: Connections accepted in one pass before the selector reads the others.
ACCEPT_BATCH = 256


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


class RPCServer:
    """Serves a :class:`Dispatcher` on a unix socket until stopped.

    ``limits`` returns the current :class:`ConnectionLimits`; it is called
    on every pass of accepts and every wait for bytes, so that a reload
    takes effect at once.  Without it, the defaults apply with
    ``max_connections``.  :attr:`counters` counts the connections refused,
    evicted and timed out.
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
        # Connections without a whole request yet, owned by the selector
        # thread: only it reads, closes or hands them over.
        self._waiting: dict[socket.socket, protocol.FrameDecoder] = {}
        self._selector: selectors.BaseSelector | None = None
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Bind the socket (0660) and start accepting."""
        self._stopping.clear()
        self._sock = self._bind()
        self._sock.setblocking(False)
        self._waker = socket.socketpair()
        self._waker[0].setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._selector.register(self._waker[0], selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._select_loop,
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
            self._wake()
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
            self._hang_up(client)

    def _wake(self) -> None:
        if self._waker is not None:
            try:
                self._waker[1].send(b'x')
            except OSError:
                pass  # a wake-up is pending already

    # -- the selector thread: accepts and first requests -------------------

    def _select_loop(self) -> None:
        selector = self._selector
        waker = self._waker
        assert selector is not None and waker is not None
        next_sweep = self.clock() + SWEEP_INTERVAL
        try:
            while not self._stopping.is_set():
                # Nothing to time out: sleep until a connection comes.
                timeout = (max(0.0, next_sweep - self.clock())
                           if self._waiting else None)
                ready = [key.fileobj for key, _ in selector.select(timeout)]
                # Requests first: the accepts may evict their connections.
                ready.sort(key=lambda sock: sock is self._sock)
                for sock in ready:
                    self._ready(sock, waker[0])
                if self.clock() >= next_sweep:
                    self._sweep()
                    next_sweep = self.clock() + SWEEP_INTERVAL
        finally:
            for client in list(self._waiting):
                self._close_waiting(client)
            selector.close()
            for end in waker:
                end.close()
            self._selector = self._waker = None

    def _ready(self, sock: Any, waker: socket.socket) -> None:
        try:
            if sock is self._sock:
                self._accept_ready()
            elif sock is waker:
                self._drain_waker()
            elif sock in self._waiting:
                # (Not when an accept of the same pass evicted it.)
                self._read_waiting(sock)
        except Exception:
            LOG.exception('Broker RPC selector failed on a connection; '
                          'carrying on')
            if sock in self._waiting:
                self._close_waiting(sock)

    def _drain_waker(self) -> None:
        assert self._waker is not None
        try:
            self._waker[0].recv(4096)
        except OSError:
            pass  # nothing left to read

    def _accept_ready(self) -> None:
        """Accept a batch of what the backlog holds.

        A batch is at most a quarter of the connections kept before
        evictions start, so that a connection accepted in it is read at
        least once more before newer ones can evict it.
        """
        limits: ConnectionLimits | None = None
        batch = 1
        while batch > 0:
            batch -= 1
            sock = self._sock
            if sock is None or self._stopping.is_set():
                return
            try:
                client, _ = sock.accept()
            except BlockingIOError:
                return
            except OSError:
                LOG.exception('Broker RPC accept failed; carrying on')
                return
            if not isinstance(client, socket.socket):
                # eventlet's green socket hands out the raw socket when it
                # accepts without blocking: make it green again, or its
                # caller's thread would block the whole process.
                client = socket.socket(fileno=client.detach())
            try:
                if limits is None:
                    limits = self.limits()
                    batch = min(ACCEPT_BATCH, limits.soft_limit // 4)
                self._admit(client, limits)
            except Exception:
                # One connection's failure (limits that cannot be read)
                # must not end the selector thread.
                LOG.exception('Cannot serve a broker RPC connection; '
                              'closing it and carrying on')
                self._close_waiting(client)

    def _admit(self, client: socket.socket, limits: ConnectionLimits) -> None:
        client.setblocking(False)
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
        with self._lock:
            victims = self._clients.admit(client, self.clock(), limits,
                                          owner=peer.pid)
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
            if victim in self._waiting:
                self._close_waiting(victim)
            else:
                self._hang_up(victim)  # its thread sees end of file
        assert self._selector is not None
        self._waiting[client] = protocol.FrameDecoder(self.max_frame)
        self._selector.register(client, selectors.EVENT_READ)
        # A caller sends its request as soon as it connects: take it now,
        # before the rest of the batch may evict the connection.
        self._read_waiting(client)

    def _read_waiting(self, client: socket.socket) -> None:
        """Read a connection that has not sent a whole request yet."""
        decoder = self._waiting[client]
        try:
            data = client.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as err:
            LOG.debug('Broker RPC client went away: %s', err)
            data = b''
        if not data:
            self._close_waiting(client)
            return
        try:
            frames = decoder.feed(data)
        except errors.ProtocolError as err:
            self._send_now(client, protocol.error_response(
                None, 'ProtocolError', str(err)))
            self._close_waiting(client)
            return
        with self._lock:
            self._clients.received(client, self.clock(), len(frames),
                                   decoder.pending)
        if frames:
            self._hand_over(client, decoder, frames)

    def _hand_over(self, client: socket.socket,
                   decoder: protocol.FrameDecoder,
                   frames: list[protocol.Frame]) -> None:
        """Give a connection with whole requests a thread of its own."""
        assert self._selector is not None
        self._selector.unregister(client)
        del self._waiting[client]
        with self._lock:
            # Its request is whole: it is served, not evicted.
            self._clients.set_in_call(client, True, self.clock())
        client.setblocking(True)
        try:
            threading.Thread(target=self._serve,
                             args=(client, decoder, frames),
                             name='broker-rpc-client', daemon=True).start()
        except RuntimeError:
            LOG.exception('Cannot start a thread for a broker RPC caller; '
                          'closing its connection')
            self._forget(client)
            client.close()

    def _sweep(self) -> None:
        """Close the waiting connections past their read timeout."""
        if not self._waiting:
            return
        try:
            limits = self.limits()
        except Exception:
            LOG.exception('Cannot read the broker RPC connection limits; '
                          'checking the read timeouts later')
            return
        now = self.clock()
        with self._lock:
            late = [client for client in self._waiting
                    if self._clients.remaining(client, now, limits) <= 0]
            self.counters['timed_out'] += len(late)
        for client in late:
            LOG.debug('Closing a broker RPC connection that sent no '
                      'whole request in time')
            self._close_waiting(client)

    def _close_waiting(self, client: socket.socket) -> None:
        if self._waiting.pop(client, None) is not None:
            assert self._selector is not None
            self._selector.unregister(client)
        self._forget(client)
        client.close()

    def _forget(self, client: socket.socket) -> None:
        with self._lock:
            self._clients.discard(client)
            self._socks.discard(client)

    @staticmethod
    def _hang_up(client: Any) -> None:
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    @staticmethod
    def _send_now(client: socket.socket, data: bytes) -> None:
        # The selector thread never waits for a client: a reply that does
        # not fit the socket's buffer at once is dropped with the client.
        try:
            client.send(data)
        except OSError:
            pass  # the client is gone already; nothing to tell it

    def _refuse(self, client: socket.socket, kind: str, message: str) -> None:
        self._send_now(client, protocol.error_response(None, kind, message))
        client.close()

    # -- a caller's own thread ---------------------------------------------

    def _serve(self, client: socket.socket, decoder: protocol.FrameDecoder,
               frames: list[protocol.Frame]) -> None:
        try:
            for frame in frames:
                self._answer(client, frame)
            self._converse(client, decoder)
        except OSError as err:
            LOG.debug('Broker RPC client went away: %s', err)
        finally:
            self._forget(client)
            client.close()

    def _converse(self, client: socket.socket,
                  decoder: protocol.FrameDecoder) -> None:
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
        with self._lock:
            self._clients.set_in_call(client, True, self.clock())
        try:
            if frame.kind != protocol.REQUEST:
                reply = protocol.error_response(
                    None, 'BadRequest', 'expected a request frame')
            else:
                reply = self.dispatcher.dispatch(frame.body)
            # A client that does not take its answer is as slow as one
            # that does not send its request.  Until it has it, the call
            # is not over: an eviction would lose an answer computed.
            client.settimeout(self.limits().read_timeout)
            client.sendall(reply)
        finally:
            with self._lock:
                self._clients.set_in_call(client, False, self.clock())
