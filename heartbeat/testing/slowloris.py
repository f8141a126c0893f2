"""Slow clients that hold a broker's connections, for tests and benchmarks.

::

    with SlowClients(broker.socket_path, count=200) as slow:
        ...                       # measure real callers meanwhile
    slow.reconnects               # connections the server closed

Half of the clients connect and send nothing; the other half send the
first bytes of a request frame, one byte per ``interval``, never finishing
it.  A connection the server closes is opened again at once, as an attacker
would, so that the server stays under the same pressure throughout.

The clients run in a process of their own, at a lower priority (``nice``):
they are the attacker, not the measured party, and in the measuring
process they would compete for its interpreter lock with the very caller
whose latency is measured.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import types

from heartbeat.broker import protocol

#: How much lower the attacking process's priority is.
NICENESS = 10


class _Attack:
    """The connections themselves, run in the attacking process."""

    def __init__(self, path: str, count: int, interval: float) -> None:
        self.path = path
        self.count = count
        self.interval = interval
        self.reconnects = 0
        self._frame = protocol.request(1, 'ping', {})
        self._socks: list[socket.socket | None] = [None] * count
        self._sent = [0] * count

    def open_all(self) -> None:
        for n in range(self.count):
            self._socks[n] = self._open()

    def round(self) -> None:
        for n in range(self.count):
            self._tick(n)

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


def main(argv: list[str] | None = None) -> None:
    """The attacking process: ``path count interval`` as arguments.

    It prints ``ready`` once every connection is open, then the number of
    reconnects after every round (when its output can take it without
    waiting); at the end of its standard input it prints the final number
    and exits.
    """
    path, count, interval = (argv or sys.argv[1:])[:3]
    os.nice(NICENESS)
    attack = _Attack(path, int(count), float(interval))
    attack.open_all()
    _say('ready')
    os.set_blocking(sys.stdout.fileno(), False)
    while not select.select([sys.stdin], [], [], attack.interval)[0]:
        attack.round()
        try:
            _say(str(attack.reconnects))
        except BlockingIOError:
            pass  # nobody reads just now: the next round says it
    os.set_blocking(sys.stdout.fileno(), True)
    _say(str(attack.reconnects))


def _say(line: str) -> None:
    os.write(sys.stdout.fileno(), line.encode() + b'\n')


class SlowClients:
    """``count`` slowloris connections to the unix socket ``path``."""

    def __init__(self, path: str, count: int = 200,
                 interval: float = 0.05) -> None:
        self.path = path
        self.count = count
        self.interval = interval
        self._reconnects = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._partial = b''

    @property
    def reconnects(self) -> int:
        """Connections the server closed and the clients opened again."""
        if self._proc is not None and self._proc.stdout is not None:
            try:
                self._parse(os.read(self._proc.stdout.fileno(), 65536))
            except BlockingIOError:
                pass  # nothing new
        return self._reconnects

    def _parse(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b'\n')
        for line in lines:
            if line.isdigit():
                self._reconnects = int(line)

    def start(self, timeout: float = 30.0) -> SlowClients:
        """Open every connection, then keep them open in a process."""
        self._proc = subprocess.Popen(
            [sys.executable, '-m', __name__, self.path, str(self.count),
             str(self.interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not ready or self._proc.stdout.readline() != b'ready\n':
            status = self._proc.poll()
            self.stop()
            raise RuntimeError(
                'the slow clients did not connect to %s within %.0f s '
                '(their process: %s)' % (
                    self.path, timeout,
                    'running' if status is None else 'exit %d' % status))
        os.set_blocking(self._proc.stdout.fileno(), False)
        return self

    def stop(self) -> None:
        """Stop the clients; their process closes every connection."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), True)
        try:
            out, _ = proc.communicate(timeout=5.0)
            self._parse(out)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.stop()


if __name__ == '__main__':
    main()
