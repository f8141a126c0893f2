"""Start the protected workload as the holder of its own lease.

sanlock kills the *registered process* that holds a lease when the host can
no longer renew it.  For that process to be the workload itself, the
workload is started through this launcher::

    python -m heartbeat.workload.holder [--sanlock-run-dir DIR] -- CMD ARGS

which registers with the sanlock daemon (keeping the registration across
exec), prints ``ready PID`` on stdout, waits for a line ``go`` on stdin, and
then replaces itself with ``CMD ARGS`` (same pid; stdin becomes /dev/null
and stdout the launcher's stderr).  Between ``ready`` and ``go`` the caller
asks the broker to acquire the lease for PID; if that fails it closes stdin
(or writes anything but ``go``) and the launcher exits with status 3 without
running the workload.  :func:`spawn` does all of this from Python.

``--no-register`` skips sanlock (for ``[fencing] fencer = none``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import os
import subprocess
import sys
from typing import IO

from heartbeat.fencing.base import FencingError

NOT_STARTED = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m heartbeat.workload.holder',
        description='Run a command as the holder of its sanlock lease.')
    parser.add_argument('--sanlock-run-dir', help='SANLOCK_RUN_DIR of the '
                        'daemon to register with.')
    parser.add_argument('--no-register', action='store_true',
                        help='Do not register with sanlock (fencer none).')
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == '--':
        command = command[1:]
    if not command:
        parser.error('give the command to run after --')
    if not args.no_register:
        from heartbeat.fencing import binding

        try:
            sanlock = binding.load(args.sanlock_run_dir)
            fd = sanlock.register()
        except Exception as err:
            # FencingError, OSError, or the binding's SanlockException.
            print('holder: cannot register with sanlock: %s' % (err,),
                  file=sys.stderr)
            return NOT_STARTED
        # The registration lives as long as this fd: keep it across exec.
        os.set_inheritable(fd, True)
    print('ready %d' % os.getpid(), flush=True)
    line = sys.stdin.readline().strip()
    if line != 'go':
        return NOT_STARTED
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    try:
        os.execvp(command[0], command)  # noqa: S606
    except OSError as err:
        print('holder: cannot run %s: %s' % (command[0], err),
              file=sys.stderr)
    return 127


class HolderProcess:
    """A workload started through the launcher, waiting for ``go``."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != 'ready':
            proc.wait()
            raise FencingError(
                'The workload launcher did not register with sanlock (exit '
                'status %s); see its stderr.' % proc.returncode)
        self.pid = int(line[1])

    def go(self) -> None:
        """Let the workload run (call once its lease is held)."""
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write('go\n')
        stdin.close()

    def abort(self) -> int:
        """Do not run the workload; wait for the launcher to exit."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        return self.proc.wait()


def spawn(command: Sequence[str], sanlock_run_dir: str | None = None,
          register: bool = True, env: Mapping[str, str] | None = None,
          stderr: int | IO[bytes] | None = None) -> HolderProcess:
    """Start ``command`` through the launcher; returns once registered."""
    argv = [sys.executable, '-m', 'heartbeat.workload.holder']
    if sanlock_run_dir:
        argv += ['--sanlock-run-dir', sanlock_run_dir]
    if not register:
        argv.append('--no-register')
    argv += ['--', *command]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=stderr,
                            env=dict(env) if env is not None else None,
                            text=True)
    return HolderProcess(proc)


if __name__ == '__main__':
    sys.exit(main())
