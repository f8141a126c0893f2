"""A real sanlock daemon per simulated host, unprivileged, own run directory.

::

    with SanlockDaemon(tmpdir, name='host-1') as daemon:
        env = daemon.environ()     # SANLOCK_RUN_DIR for child processes
        conf.set_override('sanlock_run_dir', daemon.run_dir, 'fencing')
        subprocess.run(['heartbeat-broker', ...], env=env)

The daemon runs without a watchdog (``-w 0``), without raised limits
(``SANLOCK_PRIVILEGED=0``) and with a fixed host name, so several daemons
(one per simulated host) run side by side.  sanlock's client library reads
``SANLOCK_RUN_DIR`` once per process: run the code that talks to each
daemon in its own process.  Readiness is polled with ``sanlock client
status``, never guessed; a daemon that does not come up raises
:class:`~heartbeat.cluster.errors.ClusterError`.

Facts for fast tests: initialise lockspaces with io_timeout 1 and join with
the same (joining then takes about 3 s); without a watchdog a lease holder
whose daemon dies keeps running, so simulate host death by killing that
host's processes too; a daemon ignores SIGTERM while it has lockspaces, so
:meth:`SanlockDaemon.stop` uses ``sanlock client shutdown -f 1``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from heartbeat.cluster.errors import ClusterError
from heartbeat.cluster import lifecycle

SANLOCK = 'sanlock'


class SanlockDaemon(lifecycle.Fixture):
    """One sanlock daemon process; see the module docstring."""

    start_timeout = 15.0

    def __init__(self, workdir: str, name: str = 'host') -> None:
        self.workdir = os.path.abspath(workdir)
        self.run_dir = os.path.join(self.workdir, 'run')
        os.makedirs(self.run_dir, exist_ok=True)
        self.name = name
        self.log_path = os.path.join(self.workdir, 'sanlock.log')
        self.proc: subprocess.Popen[bytes] | None = None

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for processes that should talk to this daemon."""
        env = dict(os.environ if base is None else base)
        env['SANLOCK_RUN_DIR'] = self.run_dir
        env['SANLOCK_PRIVILEGED'] = '0'
        return env

    def command(self) -> list[str]:
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        return [SANLOCK, 'daemon', '-D', '-w', '0', '-l', '0', '-h', '0',
                '-e', self.name, '-U', user, '-G', group]

    def client(self, *args: str,
               timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run ``sanlock client ARGS`` against this daemon."""
        return subprocess.run([SANLOCK, 'client', *args],
                              env=self.environ(), capture_output=True,
                              text=True, timeout=timeout, check=False)

    def ready(self) -> bool:
        try:
            return self.client('status', timeout=5.0).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self) -> None:
        if shutil.which(SANLOCK) is None:
            raise ClusterError(
                'sanlock is not installed: install the Debian packages '
                'sanlock and python3-sanlock (apt-get install sanlock '
                'python3-sanlock, or tools/install-bindep.sh).')
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                self.command(), env=self.environ(), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.ready():
                return
            time.sleep(0.05)
        self._kill()
        raise ClusterError(
            'sanlock daemon in %s did not become ready within %.0fs; log:\n%s'
            % (self.run_dir, self.start_timeout, self.log_tail()))

    def log_tail(self, size: int = 3000) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(max(0, os.path.getsize(self.log_path) - size))
                return f.read().decode('utf-8', 'replace')
        except OSError as err:
            return '(no log: %s)' % err

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the daemon down, leaving its lockspaces by force."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.client('shutdown', '-f', '1', '-w', '1',
                            timeout=timeout)
            except subprocess.TimeoutExpired:
                pass  # killed below
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None

    def kill(self) -> None:
        """kill -9 the daemon, as a host that loses power.

        No lockspace is left: other hosts see this host die after
        sanlock's delay.
        """
        self._kill()
        self.proc = None

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def fencing_section(daemon: SanlockDaemon, lease_path: str,
                    io_timeout: int = 1,
                    join_timeout: float = 30.0) -> dict[str, Any]:
    """A ``[fencing]`` section for a broker of ``daemon`` (fast timeouts)."""
    return {'fencer': 'sanlock', 'lease_path': lease_path,
            'io_timeout': io_timeout, 'join_timeout': join_timeout,
            'sanlock_run_dir': daemon.run_dir}


def sanlock_init(config_path: str, daemon: SanlockDaemon) -> str:
    """Run ``heartbeat-storage sanlock-init`` for a broker's config file.

    Returns its output; raises :class:`ClusterError` with its stderr if it
    fails.
    """
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.storage', '--config-file',
         config_path, 'sanlock-init'], env=daemon.environ(),
        capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode:
        raise ClusterError('sanlock-init failed (%d): %s'
                           % (proc.returncode, proc.stderr))
    return proc.stdout


def missing() -> str | None:
    """Why sanlock fencing cannot run here (None: it can)."""
    if shutil.which(SANLOCK) is None:
        return ('the sanlock daemon is not installed: apt-get install '
                'sanlock python3-sanlock (or tools/install-bindep.sh)')
    from heartbeat.fencing import binding
    from heartbeat.fencing.errors import FencingError

    try:
        binding.load()
    except FencingError as err:
        return str(err)
    return None
