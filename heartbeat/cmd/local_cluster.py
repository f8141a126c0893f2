"""heartbeat-local-cluster: N simulated hosts on one machine.

Creates a metadata file in the work directory, writes
``WORKDIR/heartbeat.conf`` (so ``heartbeat-status --config-file
WORKDIR/heartbeat.conf`` works from another terminal), starts one
heartbeat-member process per host with short intervals and shows the live
status until interrupted or until ``--duration`` has passed (``--json``:
one summary at exit instead).  The exit code is 0 when every member was up
at the end, 1 otherwise.  A temporary work directory is removed at exit
unless ``--keep``; a ``--workdir`` given is always kept.  An existing
``--workdir`` whose metadata file members are writing (another local
cluster) is refused with exit code 2 unless ``--force``.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

from oslo_config import cfg

from heartbeat import cmd
from heartbeat.cmd import status as status_cmd
from heartbeat.drivers import storage
from heartbeat.drivers.storage import admin
from heartbeat.drivers.storage import layout
from heartbeat import exception
from heartbeat.model import Member
from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing.members import StorageCluster

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
    cfg.BoolOpt('force', default=False,
                help='Re-initialise the metadata file of --workdir even if '
                     'members (another local cluster) are writing it.'),
    cfg.BoolOpt('keep', default=False,
                help='Keep the work directory (its heartbeat.conf, metadata '
                     'file and member logs) at exit, so that the commands '
                     'printed still work afterwards.'),
    cfg.BoolOpt('json', default=False,
                help='No status screens: print one JSON summary at exit '
                     '(hosts, members up, each member, the work directory).'),
]


def _check_workdir(workdir: str, boot: cfg.ConfigOpts) -> None:
    """Refuse (StorageError) when members write the area of ``workdir``.

    The area and config names are those StorageCluster uses.  The watch
    covers two report intervals of the running cluster (its config file
    says which) and of this one, whichever is longer.
    """
    path = os.path.join(workdir, 'metadata')
    interval = boot.interval
    # Without its config file, assume the geometry this command writes.
    geometry = layout.Geometry(slot_size=4096,
                               max_hosts=max(boot.hosts, 16))
    config = os.path.join(workdir, 'heartbeat.conf')
    if os.path.exists(config):
        running = cmd.make_conf(['--config-file', config], [], '',
                                quiet=True)
        interval = max(interval, running.heartbeat.report_interval)
        geometry = storage.geometry_from(running)
    live = admin.live_writers(path, geometry, 2 * interval)
    if live:
        raise exception.StorageError(
            'Refusing to re-initialise %s: members are writing it (%s; '
            'another heartbeat-local-cluster on this --workdir?). Stop them '
            'or choose another --workdir; --force wipes it anyway.'
            % (path, ', '.join(live)))


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()
    stop = threading.Event()

    def body() -> int:
        boot = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        if boot.down_time < 2 * boot.interval:
            raise cfg.Error('--down-time must be at least twice --interval')
        workdir = boot.workdir or tempfile.mkdtemp(prefix='heartbeat-')
        own_dir = boot.workdir is None
        if not own_dir and not boot.force:
            _check_workdir(workdir, boot)
        cluster = StorageCluster(workdir, report_interval=boot.interval,
                                 service_down_time=boot.down_time,
                                 max_hosts=max(boot.hosts, 16))
        config = cluster.config_path
        conf = cmd.make_conf(['--config-file', config], [], '', quiet=True)
        removed = own_dir and not boot.keep
        if not boot.json:
            print('config: %s  (heartbeat-status --config-file %s%s)'
                  % (config, config, ', while this runs; --keep keeps it'
                     if removed else ''), flush=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        for host_id in range(1, boot.hosts + 1):
            cluster.start_member(host_id, member_id='host-%d' % host_id,
                                 group=GROUP, state='running')
        deadline = (time.monotonic() + boot.duration
                    if boot.duration is not None else None)
        interactive = sys.stdout.isatty()
        ok = False
        members: list[Member] = []
        try:
            with servicegroup.API(conf) as sg:
                while not stop.is_set():
                    members = sg.get_all(GROUP)
                    ok = (len(members) == boot.hosts and all(
                        m.status is Status.UP for m in members))
                    up = sum(m.status is Status.UP for m in members)
                    if interactive and not boot.json:
                        sys.stdout.write('\x1b[2J\x1b[H')
                    if not boot.json:
                        print('%s: %d/%d members up (%s)\n%s\n' % (
                            time.strftime('%H:%M:%S'), up, boot.hosts,
                            config, status_cmd.table(
                                [status_cmd.member_dict(m)
                                 for m in members])), flush=True)
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    wait = boot.refresh
                    if deadline is not None:
                        wait = min(wait, max(0.0, deadline - time.monotonic()))
                    stop.wait(wait)
        finally:
            for host_id in list(cluster.procs):
                cluster.stop_member(host_id)
            cluster.stop()
            if removed:
                shutil.rmtree(workdir, ignore_errors=True)
            elif not boot.json:
                print('kept %s: heartbeat-status --config-file %s' % (
                    workdir, config), flush=True)
        if boot.json:
            print(json.dumps({
                'hosts': boot.hosts, 'ok': ok,
                'up': sum(m.status is Status.UP for m in members),
                'members': [status_cmd.member_dict(m) for m in members],
                'workdir': None if removed else workdir,
                'config': None if removed else config}, indent=2,
                sort_keys=True))
        return 0 if ok else 1

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
