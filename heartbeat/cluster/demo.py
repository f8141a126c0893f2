"""The demo workload, which proves where and when it ran, and its log's check.

Run as ``python -m heartbeat.cluster.demo --log PATH --name HOST [--port
P]``: every ``--tick`` seconds it appends ``HOST PID START NOW`` to the
shared log ``PATH`` (wall-clock seconds; one ``O_APPEND`` write per line,
so lines of processes on one machine never mix) until it is killed, and
with ``--port`` it answers every HTTP GET on 127.0.0.1:P with ``HOST PID``.
SIGTERM ends it cleanly.  While another process still holds the port it
retries binding every tick: it runs (and ticks) meanwhile, so an overlap
would still show in the log.

:func:`intervals` turns such a log into one :class:`Run` ``(host, pid,
first, last)`` per process (a process killed by SIGKILL simply stops
ticking) and :func:`overlaps` lists the pairs of runs of different
processes that overlap in time: a protected workload must have none.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
import errno
import http.server
import os
import signal
import socket
import sys
import threading
import time
import types


@dataclasses.dataclass(frozen=True)
class Run:
    """One process's time running the workload, from its ticks."""

    host: str
    pid: int
    first: float
    last: float


def _fields(line: str) -> tuple[tuple[str, int], float, float] | None:
    parts = line.split()
    if len(parts) not in (3, 4):
        return None  # a torn last line of a killed writer
    try:
        key = (parts[0], int(parts[1]))
        times = [float(p) for p in parts[2:]]
    except ValueError:
        return None
    return key, times[0], times[-1]


def intervals(path: str) -> list[Run]:
    """The runs in the log ``path``, by start time (none if it is missing).

    Lines are ``HOST PID START NOW`` (or ``HOST PID NOW``).
    """
    runs: dict[tuple[str, int], list[float]] = {}
    try:
        with open(path, encoding='ascii', errors='replace') as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    for line in lines:
        fields = _fields(line)
        if fields is None:
            continue
        key, first, last = fields
        span = runs.setdefault(key, [first, last])
        span[0] = min(span[0], first)
        span[1] = max(span[1], last)
    return sorted((Run(h, p, s[0], s[1]) for (h, p), s in runs.items()),
                  key=lambda r: r.first)


def overlaps(runs: Sequence[Run],
             slack: float = 0.0) -> list[tuple[Run, Run]]:
    """Pairs of runs of different processes that overlap by > ``slack``."""
    out = []
    ordered = sorted(runs, key=lambda r: r.first)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b.first - slack > a.last:
                break
            if (a.host, a.pid) != (b.host, b.pid):
                out.append((a, b))
    return out


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(port: int, timeout: float = 0.5) -> str | None:
    """What the workload on ``port`` answers (``HOST PID``); None: nobody."""
    try:
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=timeout) as sock:
            sock.sendall(b'GET / HTTP/1.0\r\nHost: demo\r\n\r\n')
            data = b''
            while len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b'\r\n\r\n')
    if not head.startswith(b'HTTP/1.') or b' 200 ' not in head[:16]:
        return None
    return body.decode('utf-8', 'replace').strip() or None


class _Server(http.server.HTTPServer):
    allow_reuse_address = True
    answer = b''


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        body = self.server.answer
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: every probe of the status screen would be a line."""


def _bind(port: int, answer: bytes) -> _Server | None:
    try:
        server = _Server(('127.0.0.1', port), _Handler)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        return None
    server.answer = answer
    threading.Thread(target=server.serve_forever, name='demo-http',
                     daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m heartbeat.cluster.demo',
        description='The demo workload: append "HOST PID START NOW" to a '
                    'log every tick and answer HTTP GETs with "HOST PID" '
                    'until killed.')
    parser.add_argument('--log', required=True, help='The shared log.')
    parser.add_argument('--name', required=True, help='This host\'s name.')
    parser.add_argument('--port', type=int,
                        help='Serve HTTP on 127.0.0.1:PORT (default: no '
                             'HTTP).')
    parser.add_argument('--tick', type=float, default=0.1,
                        help='Seconds between two ticks (default 0.1).')
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_term(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    start = time.time()
    answer = ('%s %d\n' % (args.name, os.getpid())).encode()
    server = None
    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while not stop.is_set():
            os.write(fd, ('%s %d %.3f %.3f\n' % (
                args.name, os.getpid(), start, time.time())).encode())
            if server is None and args.port:
                server = _bind(args.port, answer)
            stop.wait(args.tick)
    finally:
        os.close(fd)
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
