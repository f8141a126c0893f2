"""Real member processes on a shared metadata file, for tests and demos.

``StorageCluster`` writes a heartbeat.conf for the storage driver in a
directory of its own, initialises the metadata area, and starts
``heartbeat-member`` processes (one per host_id) that users' own tests can
kill, stop or restart::

    with StorageCluster(tmpdir, report_interval=0.2,
                        service_down_time=1.0) as cluster:
        cluster.start_member(1)
        cluster.wait_joined(1)
        cluster.kill(1)
"""

from __future__ import annotations

from collections.abc import Sequence
import os
import signal
import subprocess
import sys
import time

from oslo_config import cfg

from heartbeat.drivers import storage
from heartbeat.drivers.storage import admin
from heartbeat import exception
from heartbeat.testing import config
from heartbeat.testing import fixture

CONF_TEMPLATE = """\
[heartbeat]
driver = storage
report_interval = {report_interval}
service_down_time = {service_down_time}

[heartbeat_storage]
path = {path}
max_hosts = {max_hosts}
"""


class StorageCluster(fixture.Fixture):
    """Member processes writing one metadata file in ``workdir``."""

    def __init__(self, workdir: str, report_interval: float = 0.2,
                 service_down_time: float = 1.0,
                 max_hosts: int = 16) -> None:
        self.workdir = workdir
        self.report_interval = report_interval
        self.service_down_time = service_down_time
        self.max_hosts = max_hosts
        os.makedirs(workdir, exist_ok=True)
        self.metadata_path = os.path.join(workdir, 'metadata')
        self.config_path = os.path.join(workdir, 'heartbeat.conf')
        with open(self.config_path, 'w', encoding='utf-8') as f:
            f.write(CONF_TEMPLATE.format(
                report_interval=report_interval,
                service_down_time=service_down_time,
                path=self.metadata_path, max_hosts=max_hosts))
        admin.init_area(self.make_conf(), force=True)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._log_start: dict[int, int] = {}

    def make_conf(self, host_id: int | None = None) -> cfg.ConfigOpts:
        """A parsed ConfigOpts for this cluster (an in-process observer)."""
        conf = config.make_conf(argv=['--config-file', self.config_path])
        if host_id is not None:
            conf.set_override('host_id', host_id, group='heartbeat')
        return conf

    def log_path(self, host_id: int) -> str:
        return os.path.join(self.workdir, 'member-%d.log' % host_id)

    def start_member(self, host_id: int, member_id: str | None = None,
                     group: str = 'g', state: str | None = None,
                     state_file: str | None = None,
                     extra: Sequence[str] = ()
                     ) -> subprocess.Popen[bytes]:
        """Start a heartbeat-member process writing slot ``host_id``."""
        old = self.procs.get(host_id)
        if old is not None and old.poll() is None:
            raise exception.HeartbeatError(
                'host_id %d already has a running member' % host_id)
        argv = [sys.executable, '-m', 'heartbeat.cmd.member',
                '--config-file', self.config_path,
                '--host-id', str(host_id), '--group', group,
                '--member-id', member_id or 'member-%d' % host_id]
        if state is not None:
            argv += ['--state', state]
        if state_file is not None:
            argv += ['--state-file', state_file]
        argv += extra
        with open(self.log_path(host_id), 'ab') as log:
            self._log_start[host_id] = log.tell()
            proc = subprocess.Popen(argv, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.procs[host_id] = proc
        return proc

    def read_slot(self, host_id: int) -> tuple[int, int] | None:
        """(incarnation, seq) of the valid record in slot ``host_id``."""
        area = storage.open_area(self.make_conf(), writable=False)
        try:
            read = area.read_slot(host_id)
        finally:
            area.close()
        if read.slot is None or read.slot.left:
            return None
        return (read.slot.incarnation, read.slot.seq)

    def wait_joined(self, host_id: int, timeout: float = 30.0) -> None:
        """Block until the running member of ``host_id`` has reported."""
        proc = self.procs[host_id]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise exception.HeartbeatError(
                    'member %d exited with %s; see %s'
                    % (host_id, proc.returncode, self.log_path(host_id)))
            if self._joined(host_id):
                return
            time.sleep(0.02)
        raise exception.HeartbeatError(
            'member %d did not report within %.0fs; see %s'
            % (host_id, timeout, self.log_path(host_id)))

    def _joined(self, host_id: int) -> bool:
        try:
            with open(self.log_path(host_id), 'rb') as f:
                f.seek(self._log_start.get(host_id, 0))
                return b' joined ' in f.read()
        except FileNotFoundError:
            return False

    def kill(self, host_id: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the member of ``host_id`` and reap it."""
        proc = self.procs[host_id]
        if proc.poll() is None:
            proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                proc.wait(timeout=30)

    def stop_member(self, host_id: int) -> int:
        """Stop the member cleanly (SIGTERM: it leaves its group)."""
        self.kill(host_id, signal.SIGTERM)
        code = self.procs[host_id].returncode
        return int(code) if code is not None else -1

    def stop(self) -> None:
        for host_id, proc in list(self.procs.items()):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            del self.procs[host_id]
