"""The client of the broker's local RPC, used by the agent and the CLIs.

::

    client = BrokerClient('/run/heartbeat/broker.sock', timeout=5.0)
    client.ping()
    status = client.get_status()
    client.put_state('running', score=3400, payload={})

Every call has a timeout (the client's default or the call's own) and
raises a :class:`~heartbeat.broker.errors.BrokerError` subclass on failure:
:class:`~heartbeat.broker.errors.BrokerUnavailable`,
:class:`~heartbeat.broker.errors.BrokerTimeout`, or
:class:`~heartbeat.broker.errors.RemoteError` carrying the broker's error
type and message.  A client may be shared by threads (calls are
serialised); use one client per thread for parallel calls.

A client keeps its connection between calls.  Before it sends on a kept
connection it checks that the broker has not closed it (a broker restart
does), and opens a new one if it has: nothing was sent, so nothing can run
twice.  When a connection fails *after* the request was handed to it, only
the methods in :data:`heartbeat.broker.protocol.IDEMPOTENT` are sent again
(once, on a new connection, and only if the connection was a kept one).
Any other method raises :class:`CallOutcomeUnknown`: the broker may or may
not have run it, and the caller must find out (``get_status``) before it
acts on either guess.  A :class:`~heartbeat.broker.errors.BrokerTimeout`
leaves the outcome just as open.
"""

from __future__ import annotations

from collections.abc import Mapping
import itertools
import socket
import threading
import time
from types import TracebackType
from typing import Any

from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat.broker.status import BrokerStatus

DEFAULT_TIMEOUT = 5.0


class CallOutcomeUnknown(errors.BrokerUnavailable):
    """The connection failed after a non-idempotent request was sent.

    The broker may or may not have run the call; it was not sent again.
    """


class NotDelivered(errors.BrokerUnavailable):
    """The connection failed before the request was sent whole.

    The broker only runs whole requests, so the call did not run.
    """


def peer_closed(sock: socket.socket) -> bool:
    """Whether the other end of ``sock`` has closed it (without blocking).

    Unread data (a late answer) means the socket may still be good: the
    send that follows finds out.
    """
    # With a timeout set, Python would wait for data before the recv.
    sock.settimeout(0.0)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return not data


class BrokerClient:
    """Calls methods of the local broker over its unix socket."""

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT,
                 max_frame: int = protocol.DEFAULT_MAX_FRAME) -> None:
        self.path = path
        self.timeout = timeout
        self.max_frame = max_frame
        self._sock: socket.socket | None = None
        self._decoder = protocol.FrameDecoder(max_frame)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------

    def _connect(self, deadline: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            sock.connect(self.path)
        except TimeoutError as err:
            sock.close()
            raise errors.BrokerTimeout(
                'Timed out connecting to the broker at %s.'
                % self.path) from err
        except OSError as err:
            sock.close()
            raise errors.BrokerUnavailable(
                'Cannot reach the broker at %s (%s): is heartbeat-broker '
                'running, and is [broker] socket_path the same on both '
                'sides?' % (self.path, err.strerror or err)) from err
        self._decoder = protocol.FrameDecoder(self.max_frame)
        return sock

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, method: str, args: Mapping[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        """Call ``method`` with ``args``; its result, or raise.

        See the module docstring for when a call is sent again.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        call_id = next(self._ids)
        frame = protocol.request(call_id, method, dict(args or {}))
        idempotent = method in protocol.IDEMPOTENT
        with self._lock:
            if self._sock is not None and peer_closed(self._sock):
                # The broker closed the kept connection (it restarted, or
                # dropped an idle client): nothing is sent on it.
                self._drop()
            reused = self._sock is not None
            try:
                return self._exchange(call_id, frame, deadline, method)
            except CallOutcomeUnknown:
                raise
            except errors.BrokerUnavailable:
                if not (reused and idempotent):
                    raise
            # The kept connection died under an idempotent call: once more,
            # on a new connection.
            return self._exchange(call_id, frame, deadline, method)

    def _exchange(self, call_id: int, frame: bytes, deadline: float,
                  method: str) -> Any:
        if self._sock is None:
            self._sock = self._connect(deadline)
        sock = self._sock
        try:
            self._send(sock, frame, deadline, method)
            return self._receive(sock, call_id, deadline)
        except TimeoutError as err:
            self._drop()
            raise errors.BrokerTimeout(
                'The broker at %s did not answer %s within the call timeout%s;'
                ' it may be overloaded or stuck (see its log).'
                % (self.path, method, self._maybe_ran(method))) from err
        except errors.ProtocolError:
            self._drop()
            raise
        except OSError as err:
            self._drop()
            self._unknown(method, err.strerror or str(err), err)
            raise errors.BrokerUnavailable(
                'Lost the broker at %s (%s).'
                % (self.path, err.strerror or err)) from err
        except errors.BrokerUnavailable as err:
            self._drop()
            if not isinstance(err, NotDelivered):
                self._unknown(method, str(err), err)
            raise

    def _send(self, sock: socket.socket, frame: bytes, deadline: float,
              method: str) -> None:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError) as err:
            # The broker may have refused us (busy, not permitted) and
            # closed before reading: its reason is still readable.
            self._raise_refusal(sock)
            raise NotDelivered(
                'The broker at %s closed the connection before %s was sent '
                'whole (%s); it did not run.'
                % (self.path, method, err.strerror or err)) from err

    def _receive(self, sock: socket.socket, call_id: int,
                 deadline: float) -> Any:
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                raise errors.BrokerUnavailable(
                    'The broker at %s closed the connection.' % self.path)
            for got in self._decoder.feed(data):
                response = protocol.decode_response(got.body)
                if response.call_id not in (call_id, None):
                    continue  # a late answer to an abandoned call
                return response.value()

    @staticmethod
    def _maybe_ran(method: str) -> str:
        if method in protocol.IDEMPOTENT:
            return ''
        return ' (%s may or may not have run)' % method

    def _unknown(self, method: str, why: str, err: BaseException) -> None:
        """Raise CallOutcomeUnknown for a non-idempotent ``method``."""
        if method in protocol.IDEMPOTENT:
            return
        raise CallOutcomeUnknown(
            'Lost the broker at %s after sending %s (%s): it may or may not '
            'have run, and it was not sent again. Ask get_status before '
            'acting on either.' % (self.path, method, why)) from err

    def _raise_refusal(self, sock: socket.socket) -> None:
        """Raise the error reply waiting in ``sock``, if there is one."""
        try:
            sock.settimeout(0.1)
            data = sock.recv(65536)
            frames = self._decoder.feed(data) if data else []
        except (OSError, errors.ProtocolError):
            return
        for got in frames:
            try:
                response = protocol.decode_response(got.body)
            except errors.ProtocolError:
                return
            if not response.ok:
                self._drop()
                response.value()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- methods -----------------------------------------------------------

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call('ping', timeout=timeout)
        return result

    def put_state(self, state: str | None, score: int | None = None,
                  payload: Mapping[str, Any] | None = None,
                  timeout: float | None = None) -> dict[str, Any]:
        """Post this host's state; the broker writes it in the background."""
        result: dict[str, Any] = self.call(
            'put_state', {'state': state, 'score': score,
                          'payload': dict(payload or {})}, timeout)
        return result

    def get_status(self, timeout: float | None = None) -> BrokerStatus:
        """Everything the broker knows, typed (see heartbeat.broker.status).

        Raises :class:`~heartbeat.broker.status.StatusVersionError` when the
        broker speaks another status version.
        """
        return BrokerStatus.from_dict(
            self.call('get_status', timeout=timeout))

    def start_domain_monitor(self, timeout: float | None = None) -> Any:
        return self.call('start_domain_monitor', timeout=timeout)

    def stop_domain_monitor(self, timeout: float | None = None) -> Any:
        return self.call('stop_domain_monitor', timeout=timeout)

    def set_maintenance(self, mode: str,
                        timeout: float | None = None) -> Any:
        """``local``, ``global`` or ``none``."""
        return self.call('set_maintenance', {'mode': mode}, timeout)

    def lockspace_join(self, timeout: float | None = None) -> Any:
        return self.call('lockspace_join', timeout=timeout)

    def lockspace_leave(self, timeout: float | None = None) -> Any:
        return self.call('lockspace_leave', timeout=timeout)

    def acquire_lease(self, pid: int, timeout: float | None = None) -> Any:
        """Acquire the workload lease for process ``pid`` (see holder)."""
        return self.call('acquire_lease', {'pid': pid}, timeout)

    def release_lease(self, pid: int, timeout: float | None = None) -> Any:
        return self.call('release_lease', {'pid': pid}, timeout)
