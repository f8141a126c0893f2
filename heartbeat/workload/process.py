"""The protected workload as a detached, adoptable process.

:class:`WorkloadProcess` starts one command through the lease-holder
launcher (:mod:`heartbeat.workload.holder`) in two steps::

    work = WorkloadProcess(['my-server', '--flag'], '/var/lib/heartbeat')
    pending = work.spawn()            # launched, registered, not running
    try:
        client.acquire_lease(pending.pid)
    except Exception:
        pending.abort()               # the command never runs
        raise
    identity = pending.go()           # runs now; the pid file is written

The workload is detached from its starter: it runs in its own session and
process group, with stdin on /dev/null and stdout and stderr appended to
``log_file`` (or the starter's stderr), so that killing or restarting the
starter, even with SIGKILL, neither signals the workload nor leaves it
writing into a pipe nobody reads.  A pid file (JSON, replaced atomically)
names the workload by pid *and* start time, which lets a new starter
:meth:`~WorkloadProcess.adopt` it and never mistake a reused pid for it.

Every wait is bounded; every failure is a one-line
:class:`~heartbeat.workload.errors.WorkloadError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from typing import Any

from oslo_log import log as logging

from heartbeat.workload.errors import WorkloadError
from heartbeat.workload import holder
from heartbeat.workload import procs

LOG = logging.getLogger(__name__)

PID_FILE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Identity:
    """One workload process for the life of the machine."""

    pid: int
    #: Clock ticks since boot (see :func:`heartbeat.workload.procs.
    #: start_time`): a reused pid has another start time.
    start_time: int
    command: tuple[str, ...]

    def alive(self) -> bool:
        """Whether this very process still runs (zombies count as gone)."""
        return (procs.pid_alive(self.pid)
                and procs.start_time(self.pid) == self.start_time)

    def to_dict(self) -> dict[str, Any]:
        return {'version': PID_FILE_VERSION, 'pid': self.pid,
                'start_time': self.start_time, 'command': list(self.command)}

    @classmethod
    def from_dict(cls, data: Any) -> Identity:
        """Parse a pid file's content; ValueError when it is not one."""
        if (not isinstance(data, dict)
                or data.get('version') != PID_FILE_VERSION):
            raise ValueError('not a version %d pid file' % PID_FILE_VERSION)
        pid, start, command = (data.get('pid'), data.get('start_time'),
                               data.get('command'))
        if (not isinstance(pid, int) or pid <= 0
                or not isinstance(start, int)
                or not isinstance(command, list)
                or not all(isinstance(arg, str) for arg in command)):
            raise ValueError('pid, start_time or command is missing')
        return cls(pid, start, tuple(command))


def pid_file(state_dir: str, name: str = 'workload') -> str:
    """Where the workload ``name`` of ``state_dir`` is recorded."""
    return os.path.join(state_dir, name + '.pid')


def read_pid_file(path: str) -> Identity | None:
    """The workload recorded in ``path`` (None: no file).

    Raises OSError or ValueError when the file cannot be read or parsed.
    """
    try:
        with open(path, encoding='utf-8') as f:
            return Identity.from_dict(json.load(f))
    except FileNotFoundError:
        return None


class Pending:
    """A launched, registered workload waiting for :meth:`go`.

    Exactly one of :meth:`go` and :meth:`abort` is called, once.
    """

    def __init__(self, owner: WorkloadProcess, launcher: holder.HolderProcess,
                 identity: Identity) -> None:
        self._owner = owner
        self._launcher = launcher
        self._identity = identity
        self._done = False

    @property
    def pid(self) -> int:
        """The pid the lease is acquired for (it stays the workload's)."""
        return self._identity.pid

    def _finish(self) -> None:
        if self._done:
            raise WorkloadError('The workload %d was already let go or '
                                'aborted.' % self.pid)
        self._done = True

    def go(self, timeout: float = 10.0) -> Identity:
        """Run the command; returns its identity, recorded in the pid file.

        The pid file is written before the command is let go, so a workload
        that runs is always adoptable.  Raises :class:`WorkloadError` if the
        pid file cannot be written (the command then never runs) or the
        command could not be run.
        """
        self._finish()
        try:
            self._owner._record(self._identity)
        except OSError as err:
            self._owner._ended(self._launcher.abort())
            raise WorkloadError('Cannot write the workload pid file %s: %s.'
                                % (self._owner.pid_path, err)) from err
        try:
            self._launcher.go(timeout)
        except WorkloadError:
            self._owner._failed(self._launcher.proc.returncode)
            raise
        self._owner._started(self._identity, self._launcher.proc)
        return self._identity

    def abort(self) -> None:
        """Make the launcher exit without running the command."""
        self._finish()
        self._owner._ended(self._launcher.abort())


class WorkloadProcess:
    """Start, adopt, watch and stop one protected workload on this host.

    ``command`` is the argv; ``state_dir`` holds the pid file
    ``<name>.pid``; ``register=False`` skips sanlock (``fencer = none``);
    ``flock`` (a lease file: the flock fencer) locks it instead;
    ``sanlock_run_dir`` picks the sanlock daemon; ``stop_signal`` is what
    :meth:`stop` sends; ``log_file`` receives the workload's stdout and
    stderr (appended; None: the starter's stderr); ``env`` replaces the
    environment (None: inherit).  Not thread-safe: one caller drives it.
    """

    def __init__(self, command: Sequence[str], state_dir: str, *,
                 register: bool = True, sanlock_run_dir: str | None = None,
                 stop_signal: int = signal.SIGTERM,
                 log_file: str | None = None,
                 env: Mapping[str, str] | None = None,
                 name: str = 'workload') -> None:
        if not command or not command[0]:
            raise WorkloadError('The workload command is empty.')
        if not name or os.sep in name or name.startswith('.'):
            raise WorkloadError('Invalid workload name %r: it names the pid '
                                'file in the state directory.' % name)
        self.command = tuple(command)
        self.state_dir = state_dir
        self.register = register
        #: The flock fencer's lease file the launcher locks (None: none).
        self.flock: str | None = None
        self.sanlock_run_dir = sanlock_run_dir
        self.stop_signal = stop_signal
        self.log_file = log_file
        self.env = dict(env) if env is not None else None
        self.name = name
        self.pid_path = pid_file(state_dir, name)
        self._identity: Identity | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._exit_status: int | None = None

    @property
    def identity(self) -> Identity | None:
        """The workload started or adopted here (None: none known)."""
        return self._identity

    @property
    def exit_status(self) -> int | None:
        """How our own child ended (negative: the signal); None: unknown.

        Known only for a workload started by this object (an adopted one is
        somebody else's child) and only once :meth:`running` saw it end.
        """
        return self._exit_status

    def spawn(self, timeout: float = 10.0) -> Pending:
        """Launch the command, registered with sanlock, waiting for go.

        Raises :class:`WorkloadError` when a workload recorded here still
        runs, the command is not found, the log file cannot be opened, or
        the launcher does not register within ``timeout`` seconds.
        """
        current = self._identity or self._read()
        if current is not None and current.alive():
            raise WorkloadError('The workload already runs as pid %d; adopt '
                                'or stop it first.' % current.pid)
        self._check_command()
        try:
            os.makedirs(self.state_dir, exist_ok=True)
        except OSError as err:
            raise WorkloadError('Cannot create the state directory %s: %s.'
                                % (self.state_dir, err.strerror)) from err
        output = self._open_log()
        try:
            launcher = holder.spawn(
                self.command, sanlock_run_dir=self.sanlock_run_dir,
                register=self.register, env=self.env, stderr=output,
                timeout=timeout, flock=self.flock)
        finally:
            if output is not None:
                os.close(output)
        start = procs.start_time(launcher.pid)
        if start is None:
            launcher.abort()
            raise WorkloadError('The workload launcher %d vanished after '
                                'ready.' % launcher.pid)
        self._exit_status = None
        return Pending(self, launcher, Identity(launcher.pid, start,
                                                self.command))

    def _check_command(self) -> None:
        """Refuse a command that cannot be found now (not exit 127 later)."""
        path = (self.env or os.environ).get('PATH', os.defpath)
        if shutil.which(self.command[0], path=path) is None:
            where = ('is not an executable file' if os.sep in self.command[0]
                     else 'is not found on PATH %s' % path)
            raise WorkloadError('The workload command %s %s.'
                                % (self.command[0], where))

    def _open_log(self) -> int | None:
        if self.log_file is None:
            return None
        try:
            return os.open(self.log_file,
                           os.O_WRONLY | os.O_APPEND | os.O_CREAT
                           | os.O_CLOEXEC, 0o640)
        except OSError as err:
            raise WorkloadError('Cannot open the workload log file %s: %s.'
                                % (self.log_file, err.strerror)) from err

    def adopt(self) -> Identity | None:
        """Take over the workload the pid file names, if it still runs.

        The process must be the one recorded (same pid and start time);
        otherwise the stale pid file is removed and None returned.
        """
        identity = self._read()
        if identity is None:
            return None
        if not identity.alive():
            LOG.info('Removing the stale workload pid file %s: pid %d is '
                     'gone or is another process now.', self.pid_path,
                     identity.pid)
            self._remove()
            return None
        self._identity = identity
        self._proc = None
        self._exit_status = None
        return identity

    def running(self) -> bool:
        """Whether the workload runs (reaping it if it is our child)."""
        if self._identity is None:
            return False
        if self._proc is not None:
            code = self._proc.poll()
            if code is not None:
                self._ended(code)
                return False
        if self._identity.alive():
            return True
        if self._proc is not None:
            # It ended between the poll and the check: reap it now, so that
            # its exit status is not lost.
            code = self._proc.poll()
            if code is not None:
                self._ended(code)
        return False

    def stop(self) -> None:
        """Send ``stop_signal`` to the workload's process group."""
        self._signal(self.stop_signal)

    def kill(self) -> None:
        """Send SIGKILL to the workload's process group."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        identity = self._identity
        if identity is None:
            return
        if (procs.pid_alive(identity.pid)
                and procs.start_time(identity.pid) != identity.start_time):
            # The pid belongs to another process now; so may its group.
            return
        # The workload leads its own group: a group whose leader has exited
        # still holds its other members, and Linux does not hand out that
        # pid again while the group exists.
        try:
            os.killpg(identity.pid, signum)
        except ProcessLookupError:
            pass  # the whole group has gone
        except PermissionError as err:
            raise WorkloadError('Cannot signal the workload %d: %s.'
                                % (identity.pid, err.strerror)) from err

    def forget(self) -> None:
        """Remove the pid file of a workload that has gone.

        Raises :class:`WorkloadError` while it still runs.
        """
        if self.running():
            assert self._identity is not None
            raise WorkloadError('The workload %d still runs; stop it before '
                                'forgetting it.' % self._identity.pid)
        self._remove()
        self._identity = None

    def wait(self, timeout: float, interval: float = 0.05) -> bool:
        """Wait up to ``timeout`` seconds for the workload to end.

        Returns whether it has gone.  Polls, because an adopted workload is
        not our child.
        """
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    # Bookkeeping called by Pending.

    def _started(self, identity: Identity,
                 proc: subprocess.Popen[bytes]) -> None:
        self._identity = identity
        self._proc = proc

    def _ended(self, code: int | None) -> None:
        self._exit_status = code
        self._proc = None

    def _failed(self, code: int | None) -> None:
        """The command recorded by go() never ran: drop its pid file."""
        self._ended(code)
        self._identity = None
        self._remove()

    # The pid file.

    def _read(self) -> Identity | None:
        try:
            return read_pid_file(self.pid_path)
        except (OSError, ValueError) as err:
            LOG.warning('Removing the unreadable workload pid file %s: %s',
                        self.pid_path, err)
            self._remove()
            return None

    def _record(self, identity: Identity) -> None:
        """Replace the pid file atomically (tmp, fsync, rename, fsync)."""
        tmp = '%s.tmp.%d' % (self.pid_path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                     | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                json.dump(identity.to_dict(), f)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.pid_path)
        except OSError:
            _unlink(tmp)
            raise
        _fsync_dir(self.state_dir)

    def _remove(self) -> None:
        _unlink(self.pid_path)
        _fsync_dir(self.state_dir)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    """Make a rename or unlink in ``path`` durable (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories
    finally:
        os.close(fd)
