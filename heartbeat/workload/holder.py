"""Start the protected workload as the holder of its own lease.

sanlock kills the *registered process* that holds a lease when the host can
no longer renew it.  For that process to be the workload itself, the
workload is started through this launcher::

    python -m heartbeat.workload.holder [--sanlock-run-dir DIR] -- CMD ARGS

The launcher speaks a line protocol on its stdin and stdout:

1. It registers with the sanlock daemon (keeping the registration across
   exec) and prints ``ready PID``, or prints ``error REASON`` and exits with
   status 3 (:data:`NOT_STARTED`).
2. It waits for a line ``go`` on stdin.  Between ``ready`` and ``go`` the
   caller asks the broker to acquire the lease for PID.  End of file or any
   other line makes it exit with status 3 without running the workload, so
   a caller that dies at this point never leaves a workload behind.
3. It replaces itself with ``CMD ARGS`` (same pid, so the lease holder is
   the workload): stdin becomes /dev/null, stdout the launcher's stderr.
   The original stdout is closed by the exec itself, so the caller reads end
   of file when the workload runs, or ``error REASON`` (and exit status 127)
   when the exec failed.

``--no-register`` skips sanlock (for ``[fencing] fencer = none``), and
``--flock PATH`` takes the kernel lock of the flock fencer
(:mod:`heartbeat.fencing.kernel_lock`) on PATH instead: held by this pid,
kept across the exec, so the workload holds it until it ends.  When
another process holds it, the launcher prints ``busy REASON`` and exits
with status 3.
:func:`spawn` runs all of this from Python with bounded waits;
:class:`heartbeat.workload.process.WorkloadProcess` builds the detached,
adoptable workload on top of it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import os
import posix
import select
import signal
import subprocess
import sys
import time
from typing import IO

from heartbeat.workload.errors import WorkloadBusy
from heartbeat.workload.errors import WorkloadError

NOT_STARTED = 3
EXEC_FAILED = 127

#: Longest protocol line the caller reads; the launcher writes short ones.
_MAX_LINE = 4096


def _say(stream: IO[str], line: str) -> None:
    # One line per message, whatever the error text holds.
    stream.write(' '.join(line.split()) + '\n')
    stream.flush()


def _register(run_dir: str | None) -> str | None:
    """Register with sanlock for the life of this pid; the error, or None."""
    # Imported here: the launcher without sanlock, and every importer of
    # this module, must not load the fencing code.
    from heartbeat.fencing import binding

    try:
        sanlock = binding.load(run_dir)
        fd = sanlock.register()
    except Exception as err:
        # FencingError, OSError, or the binding's SanlockException.
        return 'did not register with sanlock: %s' % (err,)
    # The registration lives as long as this fd: keep it across exec.
    os.set_inheritable(fd, True)
    return None


def _lock(path: str) -> tuple[str, str] | None:
    """Take the flock lease for this pid; (word, reason) if not taken."""
    from heartbeat.fencing import kernel_lock

    try:
        fd, other = kernel_lock.take(path)
    except OSError as err:
        return 'error', 'cannot lock %s: %s' % (path, err.strerror or err)
    if fd is None:
        return 'busy', 'the lock on %s is held by %s' % (
            path, 'another process' if other is None
            else 'process %d' % other)
    # The lock lives as long as this pid keeps a descriptor of the file.
    os.set_inheritable(fd, True)
    return None


def _exec(command: Sequence[str]) -> int:
    """Become ``command``; report on the caller's pipe if that fails."""
    # A private copy of the protocol pipe that the exec closes (os.dup
    # makes it non-inheritable): its end of file tells the caller the
    # command runs.
    status = os.fdopen(os.dup(1), 'w')
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec, and
    # the workload must get the defaults every other program expects.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execvp(command[0], list(command))  # noqa: S606
    except OSError as err:
        reason = 'cannot run %s: %s' % (command[0], err.strerror or err)
    print('holder: %s' % reason, file=sys.stderr)
    try:
        _say(status, 'error %s' % reason)
    except OSError:
        pass  # the caller is gone; the exit status still says it
    return EXEC_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the launcher protocol of the module docstring; the exit status."""
    parser = argparse.ArgumentParser(
        prog='python -m heartbeat.workload.holder',
        description='Run a command as the holder of its sanlock lease.')
    parser.add_argument('--sanlock-run-dir', help='SANLOCK_RUN_DIR of the '
                        'daemon to register with.')
    parser.add_argument('--no-register', action='store_true',
                        help='Do not register with sanlock (fencer none '
                             'or flock).')
    parser.add_argument('--flock', metavar='PATH',
                        help='Take the flock fencer\'s lock on PATH for the '
                             'workload (implies --no-register).')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='The command to run, after --.')
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == '--':
        command = command[1:]
    if not command:
        parser.error('give the command to run after --')
    refused: tuple[str, str] | None = None
    if args.flock:
        refused = _lock(args.flock)
    elif not args.no_register:
        error = _register(args.sanlock_run_dir)
        refused = None if error is None else ('error', error)
    if refused is not None:
        print('holder: %s' % refused[1], file=sys.stderr)
        _say(sys.stdout, '%s %s' % refused)
        return NOT_STARTED
    _say(sys.stdout, 'ready %d' % os.getpid())
    if sys.stdin.readline().strip() != 'go':
        return NOT_STARTED
    return _exec(command)


def _read_line(stream: IO[bytes], deadline: float) -> str | None:
    """One line from ``stream`` before ``deadline``; '' at end of file.

    None when the deadline passes first.  Reads byte by byte from the raw
    descriptor so that nothing after the line is consumed.
    """
    fd = stream.fileno()
    data = b''
    while len(data) < _MAX_LINE:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            return None
        byte = os.read(fd, 1)
        if not byte or byte == b'\n':
            break
        data += byte
    return data.decode('utf-8', 'replace').strip()


class HolderProcess:
    """A workload started through the launcher, waiting for ``go``.

    Constructing one waits (up to ``timeout`` seconds) for the launcher's
    ``ready``; a launcher that reports an error, exits or stays silent is
    killed and reaped, and :class:`WorkloadError` says why.
    """

    def __init__(self, proc: subprocess.Popen[bytes],
                 timeout: float = 10.0) -> None:
        self.proc = proc
        assert proc.stdout is not None
        line = _read_line(proc.stdout, time.monotonic() + timeout)
        words = (line or '').split(None, 1)
        if len(words) == 2 and words[0] == 'ready' and words[1].isdigit():
            self.pid = int(words[1])
            return
        self._end(kill=line is None)
        if line is None:
            reason = 'did not say ready within %.1fs' % timeout
        elif words and words[0] == 'busy':
            raise WorkloadBusy('The workload lease is busy: %s.'
                               % ' '.join(words[1:]))
        elif words and words[0] == 'error':
            reason = ' '.join(words[1:])
        elif line:
            reason = 'said %r instead of ready' % line[:80]
        else:
            reason = 'exited with status %s before ready; see its stderr' % (
                proc.returncode,)
        raise WorkloadError('The workload launcher %s.' % reason)

    def _end(self, kill: bool, timeout: float = 5.0) -> int:
        """Close our pipes and reap the launcher (killed if it lingers)."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass  # a broken pipe is closed all the same
        if not kill:
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(self.proc)
        return self.proc.wait()

    def go(self, timeout: float = 10.0) -> None:
        """Let the workload run (call once its lease is held).

        Returns once the command runs in place of the launcher; raises
        :class:`WorkloadError` (after reaping the launcher) when it could
        not be run or the launcher had already gone.
        """
        stdin = self.proc.stdin
        stdout = self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            # posix.write, not os.write: eventlet's green os.write retries
            # EPIPE forever, and a launcher that has gone must be an error.
            posix.write(stdin.fileno(), b'go\n')
            stdin.close()
        except OSError as err:
            self._end(kill=True)
            raise WorkloadError('The workload launcher went away before go '
                                '(exit status %s): %s.' %
                                (self.proc.returncode, err)) from err
        line = _read_line(stdout, time.monotonic() + timeout)
        if line == '':
            stdout.close()
            return
        self._end(kill=line is None)
        if line is None:
            raise WorkloadError('The workload did not start within %.1fs of '
                                'go.' % timeout)
        raise WorkloadError('The workload launcher %s.' % (
            line[len('error '):] if line.startswith('error ') else
            'said %r after go' % line[:80]))

    def abort(self, timeout: float = 5.0) -> int:
        """Do not run the workload; reap the launcher, return its status."""
        return self._end(kill=False, timeout=timeout)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the launcher's process group (its session) or itself."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass  # already gone


def launcher_argv(command: Sequence[str], sanlock_run_dir: str | None = None,
                  register: bool = True,
                  flock: str | None = None) -> list[str]:
    """The argv that runs ``command`` through this launcher."""
    argv = [sys.executable, '-m', 'heartbeat.workload.holder']
    if sanlock_run_dir:
        argv += ['--sanlock-run-dir', sanlock_run_dir]
    if flock:
        argv += ['--flock', flock]
    elif not register:
        argv.append('--no-register')
    return [*argv, '--', *command]


def spawn(command: Sequence[str], sanlock_run_dir: str | None = None,
          register: bool = True, env: Mapping[str, str] | None = None,
          stderr: int | IO[bytes] | None = None,
          timeout: float = 10.0, flock: str | None = None) -> HolderProcess:
    """Start ``command`` through the launcher; returns once registered.

    The launcher runs in its own session (signals to the caller's process
    group do not reach it); ``flock`` names the lease file of the flock
    fencer to lock (:class:`WorkloadBusy` when it is held); ``stderr``
    receives the launcher's and, after ``go``, the workload's stdout and
    stderr.  Raises :class:`WorkloadError`
    if it does not say ``ready`` within ``timeout`` seconds.
    """
    try:
        proc = subprocess.Popen(
            launcher_argv(command, sanlock_run_dir, register, flock),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            env=dict(env) if env is not None else None, bufsize=0,
            start_new_session=True)
    except OSError as err:
        raise WorkloadError('Cannot start the workload launcher: %s.'
                            % err) from err
    return HolderProcess(proc, timeout)


if __name__ == '__main__':
    sys.exit(main())
