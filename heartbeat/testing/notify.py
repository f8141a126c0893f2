"""A stand-in for systemd's notification socket, for tests.

:class:`NotifySocket` binds a unix datagram socket in a directory of the
test's, and collects what a daemon started with :meth:`environ` sends to
it (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``), as systemd would.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from heartbeat import exception


class NotifySocket:
    """Collects sd_notify messages sent to a socket in ``workdir``."""

    def __init__(self, workdir: str) -> None:
        self.path = os.path.join(workdir, 'notify.sock')
        self.messages: list[tuple[float, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='notify-socket')
        self._thread.start()

    def environ(self, watchdog: float | None = None) -> dict[str, str]:
        """This process's environment plus NOTIFY_SOCKET (and the period)."""
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        if watchdog is not None:
            env['WATCHDOG_USEC'] = str(int(watchdog * 1e6))
        return env

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.monotonic()
            with self._cond:
                for line in data.decode('utf-8', 'replace').splitlines():
                    self.messages.append((at, line))
                self._cond.notify_all()

    def lines(self, prefix: str = '') -> list[tuple[float, str]]:
        """Messages received so far (monotonic time, line) with ``prefix``."""
        with self._cond:
            return [(t, m) for t, m in self.messages if m.startswith(prefix)]

    def wait(self, line: str, timeout: float = 30.0) -> float:
        """Monotonic time ``line`` first arrived; waits up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, got in self.messages:
                    if got == line:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise exception.HeartbeatError(
                        'no %r within %.0fs; got %r'
                        % (line, timeout, self.messages[-10:]))
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2.0)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
