"""Slow clients that hold a broker's connections, for tests and benchmarks.

::

    with SlowClients(broker.socket_path, count=200) as slow:
        ...                       # measure real callers meanwhile
    slow.reconnects               # connections the server closed

Half of the clients connect and send nothing; the other half send the
first bytes of a request frame, one byte per ``interval``, never finishing
it.  A connection the server closes is opened again at once, as an attacker
would, so that the server stays under the same pressure throughout.
"""

from __future__ import annotations

import socket
import threading
import types

from heartbeat.broker import protocol


class SlowClients:
    """``count`` slowloris connections to the unix socket ``path``."""

    def __init__(self, path: str, count: int = 200,
                 interval: float = 0.05) -> None:
        self.path = path
        self.count = count
        self.interval = interval
        self.reconnects = 0
        self._frame = protocol.request(1, 'ping', {})
        self._socks: list[socket.socket | None] = [None] * count
        self._sent = [0] * count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run,
                                        name='slowloris', daemon=True)

    def start(self) -> SlowClients:
        """Open every connection, then keep them open in a thread."""
        for n in range(self.count):
            self._socks[n] = self._open()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close every connection."""
        self._stop.set()
        self._thread.join(5.0)
        for sock in self._socks:
            if sock is not None:
                sock.close()

    def _open(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self.path)
        except BlockingIOError:
            pass  # the backlog is full: it connects when accepted
        except OSError:
            sock.close()
            return None
        return sock

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for n in range(self.count):
                self._tick(n)

    def _tick(self, n: int) -> None:
        sock = self._socks[n]
        if sock is not None and not self._closed(sock):
            if n % 2:
                self._dribble(n, sock)
            return
        if sock is not None:
            sock.close()
            self.reconnects += 1
        self._sent[n] = 0
        self._socks[n] = self._open()

    def _dribble(self, n: int, sock: socket.socket) -> None:
        # Never the last byte: the request must stay incomplete.
        if self._sent[n] >= len(self._frame) - 1:
            return
        try:
            sock.send(self._frame[self._sent[n]:self._sent[n] + 1])
            self._sent[n] += 1
        except BlockingIOError:
            pass
        except OSError:
            self._sent[n] = len(self._frame)  # found closed next tick

    @staticmethod
    def _closed(sock: socket.socket) -> bool:
        # Any answer (end of file or an error reply) ends the connection:
        # a slow client never gets one to a request it never finished.
        try:
            sock.recv(65536)
            return True
        except BlockingIOError:
            return False
        except OSError:
            return True

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.stop()
