"""The protected workload's health, checked in the background.

:class:`HealthChecker` runs one check every ``interval`` seconds in a
daemon thread and keeps the latest result; :meth:`HealthChecker.latest`
answers from memory at once, so the agent's loop never waits on a check.

A check is either a command (split with :func:`shlex.split`, run without a
shell in its own session with stdin and stdout on /dev/null; exit status 0
is healthy) or an http(s) URL (a 2xx answer is healthy).  Each check is
bounded by ``timeout``; a command that overruns is killed with its whole
process group.  Whatever goes wrong in one check is a result, never a dead
thread: a command that does not exist is an unhealthy result with the error
as detail, and an unexpected exception is logged, counted in
:attr:`HealthChecker.errors` and leaves the previous result to age.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import http.client
import os
import shlex
import signal
import subprocess
import tempfile
import threading
from typing import IO
import urllib.error
import urllib.parse
import urllib.request

from oslo_log import log as logging

from heartbeat import clock as clock_mod
from heartbeat.workload.errors import WorkloadError

LOG = logging.getLogger(__name__)

#: How much of a failing command's stderr goes into the detail.
_DETAIL_CHARS = 200

#: A number of seconds, or a function that returns the current one.
Seconds = float | Callable[[], float]


@dataclasses.dataclass(frozen=True)
class HealthResult:
    """The latest health verdict and how old it is."""

    #: True/False: the last check's verdict; None: no result (no check is
    #: configured, none has finished yet, or :meth:`HealthChecker.reset`).
    healthy: bool | None
    detail: str
    #: Seconds since that check finished, on the checker's clock.
    age_s: float | None


@dataclasses.dataclass(frozen=True)
class _Verdict:
    healthy: bool
    detail: str


class HealthChecker:
    """Check the workload's health every ``interval`` seconds.

    Give at most one of ``command`` and ``url`` (neither: :meth:`latest`
    always says no check is configured and :meth:`start` does nothing).
    ``interval`` and ``timeout`` are seconds, or functions returning them,
    read before each check so that reloaded options apply at once.
    ``clock`` (a :class:`heartbeat.clock.Clock`, or a bare function of
    monotonic seconds) dates the results and paces the checks, so tests
    can age results and run the next check without sleeping.
    """

    def __init__(self, command: str | None = None, url: str | None = None,
                 *, interval: Seconds = 10.0, timeout: Seconds = 5.0,
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC),
                 env: Mapping[str, str] | None = None,
                 name: str = 'workload') -> None:
        if command and url:
            raise WorkloadError('Give a health command or a health URL, not '
                                'both.')
        self._interval = _as_getter(interval)
        self._timeout = _as_getter(timeout)
        if self.interval <= 0 or self.timeout <= 0:
            raise WorkloadError('The health interval and timeout must be '
                                'positive.')
        self.argv = _parse_command(command) if command else None
        self.url = _parse_url(url) if url else None
        self.name = name
        self._clock = clock_mod.as_clock(clock)
        self._env = dict(env) if env is not None else None
        self._lock = threading.Lock()
        self._result: tuple[_Verdict, float] | None = None
        self._generation = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        #: Checks that raised instead of giving a verdict.
        self.errors = 0

    @property
    def configured(self) -> bool:
        """Whether a health command or URL is set."""
        return self.argv is not None or self.url is not None

    @property
    def interval(self) -> float:
        """Seconds between the starts of two checks (read each time)."""
        return self._interval()

    @property
    def timeout(self) -> float:
        """Seconds one check may take (read each time)."""
        return self._timeout()

    def latest(self) -> HealthResult:
        """The latest result, at once (never waits for a check)."""
        if not self.configured:
            return HealthResult(None, 'no health check is configured', None)
        with self._lock:
            result = self._result
        if result is None:
            return HealthResult(None, 'no health result yet', None)
        verdict, when = result
        return HealthResult(verdict.healthy, verdict.detail,
                            max(0.0, self._clock() - when))

    def reset(self) -> None:
        """Forget the results, e.g. when a new workload starts.

        A check already running when this is called is not recorded.
        """
        with self._lock:
            self._result = None
            self._generation += 1

    def start(self) -> None:
        """Start the background thread (once; no-op without a check)."""
        if not self.configured or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._loop, name='health-%s' % self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread, killing a running check; whether it ended.

        The killed check is not recorded; the latest result stays.
        """
        self._stopping.set()
        with self._lock:
            self._generation += 1
        self._kill_current()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            LOG.warning('The %s health check thread did not stop within '
                        '%.1fs.', self.name, timeout)
            return False
        return True

    def run_once(self) -> HealthResult:
        """Run one check now, in the calling thread, and record it.

        Blocks for up to ``timeout``; the background thread calls this.
        """
        with self._lock:
            generation = self._generation
        verdict = self._check()
        with self._lock:
            if generation == self._generation:
                self._result = (verdict, self._clock())
        return self.latest()

    def _loop(self) -> None:
        interval = self.interval
        while not self._stopping.is_set():
            began = self._clock.now()
            try:
                interval = self.interval
                self.run_once()
            except Exception:
                self.errors += 1
                LOG.exception('The %s health check failed unexpectedly '
                              '(%d so far); checking again in %.1fs.',
                              self.name, self.errors, interval)
            spent = self._clock.now() - began
            # Never a busy loop, whatever a reloaded option says.
            self._clock.wait(self._stopping, max(0.05, interval - spent))

    def _check(self) -> _Verdict:
        if self.argv is not None:
            return self._check_command(self.argv)
        assert self.url is not None
        return _check_url(self.url, self.timeout)

    def _check_command(self, argv: list[str]) -> _Verdict:
        # stderr goes to a file, not a pipe: a grandchild that keeps it
        # open cannot stretch the check, and only Popen.wait is needed
        # (under eventlet, communicate() raises a TimeoutExpired of its own
        # copy of the subprocess module).
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err, env=self._env,
                    start_new_session=True)
            except OSError as error:
                return _Verdict(False, 'health command %s: %s'
                                % (argv[0], error.strerror or error))
            self._proc = proc
            try:
                timed_out = _wait_bounded(proc, self.timeout)
            finally:
                self._proc = None
            if timed_out:
                return _Verdict(False, 'health command %s timed out after '
                                '%.1fs' % (argv[0], self.timeout))
            return _status_verdict(argv[0], proc.returncode, _tail(err))

    def _kill_current(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _kill_group(proc.pid)


def _wait_bounded(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for ``proc``; kill its group after ``timeout``: whether it was."""
    try:
        proc.wait(timeout)
        return False
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
        return True


def _tail(f: IO[bytes]) -> str:
    """The last line of what a health command wrote to stderr, shortened."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * _DETAIL_CHARS))
    text = f.read().decode('utf-8', 'replace').strip()
    return text.splitlines()[-1][-_DETAIL_CHARS:] if text else ''


def _status_verdict(name: str, code: int, tail: str) -> _Verdict:
    if code == 0:
        return _Verdict(True, 'health command %s exited 0' % name)
    how = ('was killed by signal %d' % -code if code < 0
           else 'exited with status %d' % code)
    return _Verdict(False, 'health command %s %s%s'
                    % (name, how, ': ' + tail if tail else ''))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone (its pid is its group: it led its session)


# No proxies: a health URL names the workload itself, usually on this host,
# and an http_proxy meant for the outside world must not stand in between.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _check_url(url: str, timeout: float) -> _Verdict:
    """GET ``url``: 2xx is healthy; ``timeout`` bounds each socket wait."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            status = response.status
            reason = response.reason
    except urllib.error.HTTPError as err:
        status, reason = err.code, err.reason
        err.close()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        cause = getattr(err, 'reason', None) or err
        return _Verdict(False, 'health URL %s: %s' % (url, cause))
    if 200 <= status < 300:
        return _Verdict(True, 'health URL %s: HTTP %d' % (url, status))
    return _Verdict(False, 'health URL %s: HTTP %d %s'
                    % (url, status, reason))


def _as_getter(value: Seconds) -> Callable[[], float]:
    if callable(value):
        return value
    return lambda: value


def _parse_command(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise WorkloadError('Cannot parse the health command %r: %s.'
                            % (command, err)) from err
    if not argv:
        raise WorkloadError('The health command is empty.')
    return argv


def _parse_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        raise WorkloadError('The health URL %r is not an http(s) URL.'
                            % url)
    return url
