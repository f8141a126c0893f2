"""heartbeat-local-cluster: N simulated hosts on one machine.

Creates a metadata file in the work directory, writes
``WORKDIR/heartbeat.conf`` (so ``heartbeat-status --config-file
WORKDIR/heartbeat.conf`` works from another terminal), starts one
heartbeat-member process per host with short intervals and shows the live
status until interrupted or until ``--duration`` has passed.  The exit code
is 0 when every member was up at the end, 1 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from oslo_config import cfg

from heartbeat import cmd
from heartbeat.cmd import status as status_cmd
from heartbeat.drivers.storage import admin
from heartbeat.model import Status
from heartbeat import servicegroup

PROG = 'heartbeat-local-cluster'
GROUP = 'local'

CLI_OPTS = [
    cfg.IntOpt('hosts', default=3, min=1, max=2000,
               help='Number of simulated hosts.'),
    cfg.FloatOpt('duration', min=0.0,
                 help='Exit after this many seconds (default: run until '
                      'interrupted).'),
    cfg.StrOpt('workdir',
               help='Directory for the metadata file and heartbeat.conf '
                    '(default: a new temporary directory, removed at exit).'),
    cfg.FloatOpt('interval', default=0.5, min=0.05,
                 help='report_interval of the simulated hosts.'),
    cfg.FloatOpt('down-time', default=3.0, min=0.1,
                 help='service_down_time of the simulated hosts.'),
    cfg.FloatOpt('refresh', default=1.0, min=0.1,
                 help='Seconds between two status screens.'),
]

CONF_TEMPLATE = """\
[heartbeat]
driver = storage
report_interval = {interval}
service_down_time = {down_time}

[heartbeat_storage]
path = {path}
max_hosts = {max_hosts}
claim_timeout = 0
"""


def write_config(workdir: str, hosts: int, interval: float,
                 down_time: float) -> str:
    path = os.path.join(workdir, 'heartbeat.conf')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(CONF_TEMPLATE.format(
            interval=interval, down_time=down_time,
            path=os.path.join(workdir, 'metadata'),
            max_hosts=max(hosts, 16)))
    return path


def start_member(config: str, host_id: int,
                 log_dir: str) -> subprocess.Popen[bytes]:
    log = open(os.path.join(log_dir, 'host-%d.log' % host_id), 'ab')
    try:
        return subprocess.Popen(
            [sys.executable, '-m', 'heartbeat.cmd.member',
             '--config-file', config, '--member-id', 'host-%d' % host_id,
             '--group', GROUP, '--host-id', str(host_id),
             '--state', 'running'],
            stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()
    stop = threading.Event()

    def body() -> int:
        boot = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        if boot.down_time < 2 * boot.interval:
            raise cfg.Error('--down-time must be at least twice --interval')
        workdir = boot.workdir or tempfile.mkdtemp(prefix='heartbeat-')
        own_dir = boot.workdir is None
        os.makedirs(workdir, exist_ok=True)
        config = write_config(workdir, boot.hosts, boot.interval,
                              boot.down_time)
        conf = cmd.make_conf(['--config-file', config], [], '', quiet=True)
        print(admin.init_area(conf, force=True))
        print('config: %s  (heartbeat-status --config-file %s)'
              % (config, config), flush=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        procs = [start_member(config, i, workdir)
                 for i in range(1, boot.hosts + 1)]
        deadline = (time.monotonic() + boot.duration
                    if boot.duration is not None else None)
        interactive = sys.stdout.isatty()
        ok = False
        try:
            with servicegroup.API(conf) as sg:
                while not stop.is_set():
                    members = sg.get_all(GROUP)
                    ok = (len(members) == boot.hosts and all(
                        m.status is Status.UP for m in members))
                    up = sum(m.status is Status.UP for m in members)
                    if interactive:
                        sys.stdout.write('\x1b[2J\x1b[H')
                    print('%s: %d/%d members up (%s)\n%s\n' % (
                        time.strftime('%H:%M:%S'), up, boot.hosts, config,
                        status_cmd.table(members)), flush=True)
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    wait = boot.refresh
                    if deadline is not None:
                        wait = min(wait, max(0.0, deadline - time.monotonic()))
                    stop.wait(wait)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if own_dir:
                shutil.rmtree(workdir, ignore_errors=True)
        return 0 if ok else 1

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
