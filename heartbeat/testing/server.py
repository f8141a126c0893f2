"""A server process for tests, on a free loopback port in its own directory.

:class:`Server` is the base of every test server in
:mod:`heartbeat.testing.servers`: start, restart on the same port and
directory, readiness polled with a real request (never a sleep), kill -9,
SIGSTOP/SIGCONT.  A server that cannot start raises
:class:`ServerStartError`: a test that needs it fails, it is never
skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

from heartbeat import exception
from heartbeat.testing import fixture


class ServerStartError(exception.HeartbeatError):
    """A test server could not be started."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        port: int = sock.getsockname()[1]
        return port


class Server(fixture.Pausable):
    """A server process on a fixed loopback port in its own directory."""

    #: Human name used in error messages.
    kind = 'server'
    #: Seconds to wait for the server to answer after a start.
    start_timeout = 30.0

    def __init__(self, workdir: str, port: int | None = None) -> None:
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = port or free_port()
        self.host = '127.0.0.1'
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.workdir, '%s.log' % self.kind)
        self.starts = 0

    # -- to be provided by subclasses ---------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environ(self) -> dict[str, str]:
        return dict(os.environ)

    def ping(self) -> bool:
        """True when the server answers a real request."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration before the first start."""

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or restart) on the same port and directory; wait ready."""
        if self.running:
            return
        binary = self.command()[0]
        if shutil.which(binary) is None and not os.path.exists(binary):
            raise ServerStartError(
                '%s is not installed (%s not found); install the system '
                'packages listed in bindep.txt.' % (self.kind, binary))
        self.prepare()
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.environ(),
                stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self.starts += 1
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            if not self.running:
                raise ServerStartError(
                    '%s exited while starting on port %d: %s'
                    % (self.kind, self.port, self.log_tail()))
            try:
                if self.ping():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(
            '%s did not answer on port %d within %.0fs: %s'
            % (self.kind, self.port, timeout or self.start_timeout,
               self.log_tail()))

    def log_tail(self, size: int = 2000) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return '(no log)'

    def _signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM), killing after ``timeout``."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9 the server (no clean shutdown)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def restart(self, hard: bool = True) -> None:
        """kill -9 (or stop with ``hard=False``) and start on the same port."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self._signal_group(signal.SIGCONT)
