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

DEFAULT_TIMEOUT = 5.0


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
        """Call ``method`` with ``args``; its result, or raise."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        call_id = next(self._ids)
        frame = protocol.request(call_id, method, dict(args or {}))
        with self._lock:
            reused = self._sock is not None
            try:
                return self._exchange(call_id, frame, deadline)
            except errors.BrokerUnavailable:
                if not reused:
                    raise
            # The kept connection was closed by a broker restart before we
            # used it: once, with a fresh connection.
            return self._exchange(call_id, frame, deadline)

    def _exchange(self, call_id: int, frame: bytes, deadline: float) -> Any:
        if self._sock is None:
            self._sock = self._connect(deadline)
        sock = self._sock
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                # The broker may have refused us (busy, not permitted) and
                # closed before reading: its reason is still readable.
                self._raise_refusal(sock)
                raise
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    self._drop()
                    raise errors.BrokerUnavailable(
                        'The broker at %s closed the connection.'
                        % self.path)
                for got in self._decoder.feed(data):
                    response = protocol.decode_response(got.body)
                    if response.call_id not in (call_id, None):
                        continue  # a late answer to an abandoned call
                    return response.value()
        except TimeoutError as err:
            self._drop()
            raise errors.BrokerTimeout(
                'The broker at %s did not answer within the call timeout; '
                'it may be overloaded or stuck (see its log).'
                % self.path) from err
        except errors.ProtocolError:
            self._drop()
            raise
        except OSError as err:
            self._drop()
            raise errors.BrokerUnavailable(
                'Lost the broker at %s (%s).'
                % (self.path, err.strerror or err)) from err

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

    def get_status(self, timeout: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call('get_status', timeout=timeout)
        return result

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
