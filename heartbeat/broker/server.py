"""The broker's local RPC server: a unix socket, one thread per client.

The socket is created with mode 0660 (and optionally handed to a group);
every connection's peer credentials (``SO_PEERCRED``) are checked against
root, the broker's own uid, and the allowed uids/gids before any frame is
read.  A client that sends a frame the decoder cannot trust gets an error
reply and is disconnected; every other failure is one error reply.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
import grp
import os
import socket
import stat
import struct
import threading

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


class RPCServer:
    """Serves a :class:`Dispatcher` on a unix socket until stopped."""

    def __init__(self, path: str, dispatcher: Dispatcher,
                 authorizer: Authorizer, max_connections: int = 64,
                 max_frame: int = protocol.DEFAULT_MAX_FRAME,
                 group: str | None = None) -> None:
        self.path = path
        self.dispatcher = dispatcher
        self.authorizer = authorizer
        self.max_connections = max_connections
        self.max_frame = max_frame
        self.group = group
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
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
            sock.listen(128)
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
            clients = list(self._clients)
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
            with self._lock:
                busy = len(self._clients) >= self.max_connections
                if not busy:
                    self._clients.add(client)
            if busy:
                self._refuse(client, 'Busy',
                             'the broker serves %d connections already '
                             '([broker] max_connections); retry later'
                             % self.max_connections)
                continue
            threading.Thread(target=self._serve, args=(client,),
                             name='broker-rpc-client', daemon=True).start()

    @staticmethod
    def _refuse(client: socket.socket, kind: str, message: str) -> None:
        try:
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
            client.close()

    def _converse(self, client: socket.socket) -> None:
        decoder = protocol.FrameDecoder(self.max_frame)
        while not self._stopping.is_set():
            data = client.recv(RECV_SIZE)
            if not data:
                return
            try:
                frames = decoder.feed(data)
            except errors.ProtocolError as err:
                client.sendall(protocol.error_response(
                    None, 'ProtocolError', str(err)))
                return
            for frame in frames:
                if frame.kind != protocol.REQUEST:
                    reply = protocol.error_response(
                        None, 'BadRequest', 'expected a request frame')
                else:
                    reply = self.dispatcher.dispatch(frame.body)
                client.sendall(reply)
