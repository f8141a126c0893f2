"""heartbeat-local-cluster: a whole HA cluster on one machine, and a failover.

Runs --hosts simulated HA hosts (heartbeat.cluster): per host a real
heartbeat-broker and heartbeat-agent with its own config, socket and log
under the work directory, one shared metadata file, and one protected demo
workload that serves its host's name over HTTP on 127.0.0.1:--port and
logs where and when it ran.  A status screen shows per host the agent's
state and score, maintenance, the lease, where the workload serves and the
last transition's reason.

--scenario failover kills every process of the host serving the workload;
maintenance puts it into local maintenance and out again; degrade cuts its
gateway so that its score drops; storage-stall stalls its storage path
(FUSE).  On a terminal without --scenario, the keys f, m, d and s run them
and q quits.  At the end the command prints (--json: emits) a summary:
every event with its time, the time from the fault to the workload serving
on another host, and the check of the workload's log ("never two: ok").

Fencing: flock (default; a kernel lock, exact on one machine only, no
daemon needed), sanlock (a sanlock daemon per host; a killed host is
declared dead after about 70 s with io_timeout 1), or auto (sanlock when
its daemon can run here, flock otherwise).

Exit codes: 0 the workload ran on exactly one host at a time and serves at
the end; 1 it ran twice at some moment, did not come back, or a scenario
failed; 2 bad options, a work directory in use, or a daemon that could not
start.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import termios
import threading
import time
import tty
from typing import Any

from oslo_config import cfg

from heartbeat.cluster import daemons
from heartbeat.cluster import demo
from heartbeat.cluster.errors import ClusterError
from heartbeat.cluster import fuse
from heartbeat.cluster.gateways import Gateways
from heartbeat.cluster.hosts import HaCluster
from heartbeat.cluster.hosts import HaHost
from heartbeat.cluster import sanlockd
from heartbeat.cluster import scenarios
from heartbeat.cluster import screen
from heartbeat import cmd
from heartbeat.drivers import storage
from heartbeat.drivers.storage import admin
from heartbeat.drivers.storage import layout
from heartbeat import exception

PROG = 'heartbeat-local-cluster'

#: Longest unix socket path (sun_path holds 108 bytes with its NUL).
SOCKET_PATH_MAX = 107
KEYS = {'f': scenarios.FAILOVER, 'm': scenarios.MAINTENANCE,
        'd': scenarios.DEGRADE, 's': scenarios.STORAGE_STALL}
#: Seconds a scenario may wait for the workload, per fencer.
TIMEOUTS = {'flock': 60.0, 'sanlock': 300.0}
#: Seconds the storage-stall scenario stalls at most, per fencer.
STALLS = {'flock': 20.0, 'sanlock': 200.0}

CLI_OPTS = [
    cfg.IntOpt('hosts', default=3, min=1, max=2000,
               help='Number of simulated HA hosts.'),
    cfg.IntOpt('slots', default=16, min=1, max=2000,
               help='Slots of the shared metadata area: the most hosts it '
                    'holds.'),
    cfg.StrOpt('fencing', default='flock',
               choices=[('flock', 'a kernel lock on the lease file: one '
                                  'machine only, no daemon'),
                        ('sanlock', 'a sanlock daemon per host'),
                        ('auto', 'sanlock when its daemon can run, flock '
                                 'otherwise')],
               help='Fencing of the protected workload.'),
    cfg.StrOpt('scenario', choices=list(scenarios.NAMES),
               help='Run this scenario once the workload serves, print the '
                    'summary and exit (default: run until interrupted or '
                    '--duration).'),
    cfg.FloatOpt('duration', min=0.0,
                 help='Without --scenario: exit after this many seconds '
                      '(default: run until interrupted).'),
    cfg.StrOpt('workdir',
               help='Directory for every config, socket, log and the shared '
                    'storage (default: a new temporary directory, removed '
                    'at exit unless --keep).'),
    cfg.FloatOpt('interval', default=0.5, min=0.05,
                 help='report_interval of the simulated hosts.'),
    cfg.FloatOpt('down-time', default=2.0, min=0.1,
                 help='service_down_time of the simulated hosts.'),
    cfg.FloatOpt('loop', default=0.5, min=0.05,
                 help='loop_interval of the simulated agents.'),
    cfg.PortOpt('port', default=0,
                help='Port on 127.0.0.1 the workload serves on (0: a free '
                     'one).'),
    cfg.FloatOpt('timeout', min=1.0,
                 help='Seconds a scenario waits for the workload to serve '
                      '(default: 60 with flock, 300 with sanlock).'),
    cfg.FloatOpt('stall-for', min=1.0,
                 help='Seconds the storage-stall scenario stalls the '
                      'storage path at most; it resumes as soon as the '
                      'workload moved (default: 20 with flock, 200 with '
                      'sanlock, whose host-dead time is about 70 s).'),
    cfg.FloatOpt('refresh', default=1.0, min=0.1,
                 help='Seconds between two status screens.'),
    cfg.BoolOpt('force', default=False,
                help='Re-initialise the storage of --workdir even if '
                     'members are writing it.'),
    cfg.BoolOpt('keep', default=False,
                help='Keep the work directory (configs, logs, the workload '
                     'log) at exit, so that the commands printed still work '
                     'afterwards.'),
    cfg.BoolOpt('json', default=False,
                help='No status screens: print one JSON summary at exit '
                     '(progress goes to stderr).'),
]


def _check_workdir(workdir: str, boot: cfg.ConfigOpts) -> None:
    """Refuse (StorageError) when members write the area of ``workdir``.

    The watch covers two report intervals of the running cluster (its
    config file says which) and of this one, whichever is longer.
    """
    path = os.path.join(workdir, 'metadata')
    interval = boot.interval
    geometry = layout.Geometry(slot_size=4096, max_hosts=boot.slots)
    config = os.path.join(workdir, 'heartbeat.conf')
    if os.path.exists(config):
        # The running cluster's own area: with stallable storage paths it
        # is not WORKDIR/metadata.
        running = daemons.load_conf(config)
        interval = max(interval, running.heartbeat.report_interval)
        geometry = storage.geometry_from(running)
        path = running.heartbeat_storage.path
    live = admin.live_writers(path, geometry, 2 * interval)
    if live:
        raise exception.StorageError(
            'Refusing to re-initialise %s: members are writing it (%s; '
            'another heartbeat-local-cluster on this --workdir?). Stop them '
            'or choose another --workdir; --force wipes it anyway.'
            % (path, ', '.join(live)))


def _fencing(choice: str) -> str:
    if choice == 'flock':
        return choice
    missing = sanlockd.missing()
    if choice == 'auto':
        return 'flock' if missing else 'sanlock'
    if missing:
        raise exception.ConfigError('--fencing sanlock: %s.' % missing)
    return 'sanlock'


def _validate(boot: cfg.ConfigOpts) -> None:
    if boot.scenario == scenarios.STORAGE_STALL:
        reason = fuse.missing()
        if reason is not None:
            raise exception.ConfigError('--scenario storage-stall: %s.'
                                        % reason)
    if boot.down_time < 2 * boot.interval:
        raise cfg.Error('--down-time must be at least twice --interval')
    if boot.loop > boot.down_time / 2:
        raise cfg.Error('--loop must be at most half of --down-time (the '
                        'agents refuse a longer loop)')
    if boot.hosts > boot.slots:
        raise cfg.Error('--hosts %d is more than the %d slots of the '
                        'metadata area; raise --slots' % (boot.hosts,
                                                          boot.slots))
    if boot.workdir:
        longest = os.path.join(os.path.abspath(boot.workdir),
                               'b%d.sock' % boot.hosts)
        if len(longest.encode()) > SOCKET_PATH_MAX:
            raise cfg.Error('--workdir %s is too long for the brokers\' '
                            'unix sockets (%d bytes at most); choose a '
                            'shorter one' % (boot.workdir, SOCKET_PATH_MAX
                                             - len('/b%d.sock' % boot.hosts)))


class Session:
    """One run of the command: the cluster, its screen, its scenarios."""

    def __init__(self, boot: cfg.ConfigOpts, workdir: str, fencing: str,
                 out: Callable[[str], None], stallable: bool) -> None:
        self.boot = boot
        self.workdir = workdir
        self.out = out
        self.port = boot.port or demo.free_port()
        self.gateways = Gateways(range(1, boot.hosts + 1))
        #: Per host a stallable path to the shared storage (FUSE), or none.
        self.mounts: dict[int, fuse.PausableMount] = {}
        shared = None
        if stallable:
            shared = os.path.join(workdir, 'shared')
            os.makedirs(shared, exist_ok=True)
            self.mounts = {
                i: fuse.PausableMount(os.path.join(workdir, 'm%d' % i),
                                      source=shared)
                for i in range(1, boot.hosts + 1)}
        self.cluster = HaCluster(
            workdir, boot.hosts, fencing=fencing, port=self.port,
            storage_dir=shared,
            host_storage_dir=((lambda i: self.mounts[i].mountpoint)
                              if stallable else None),
            broker_overrides={
                'heartbeat': {'report_interval': boot.interval,
                              'service_down_time': boot.down_time},
                'heartbeat_storage': {'max_hosts': boot.slots}},
            agent_overrides={'agent': {'loop_interval': boot.loop}},
            host_overrides=self.gateways.overrides)
        self.timeline = scenarios.Timeline(echo=out)
        self.runner = scenarios.Runner(
            self.cluster, self.port, self.timeline,
            timeout=boot.timeout or TIMEOUTS[fencing],
            gateways=self.gateways,
            stall=self._stall if stallable else None,
            stall_for=boot.stall_for or STALLS[fencing])
        self.outcome: scenarios.Outcome | None = None
        self._scenario: threading.Thread | None = None
        self.config = os.path.join(workdir, 'heartbeat.conf')

    def _stall(self, host: HaHost, stalled: bool) -> None:
        mount = self.mounts[host.host_id]
        if stalled:
            mount.pause()
        else:
            mount.resume()

    def start(self) -> None:
        """Mount the storage paths (if any), then start the cluster."""
        for mount in self.mounts.values():
            mount.start()
        self.cluster.start()

    def write_status_conf(self) -> None:
        """WORKDIR/heartbeat.conf, for heartbeat-status and the like."""
        first = self.cluster.hosts[0].broker.sections
        daemons.write_conf(self.config, {
            'heartbeat': {k: v for k, v in first['heartbeat'].items()
                          if k not in ('host_id', 'host')},
            'heartbeat_storage': first['heartbeat_storage']})

    def start_scenario(self, name: str) -> bool:
        """Run ``name`` in the background; False if one runs already."""
        if self._scenario is not None and self._scenario.is_alive():
            return False

        def run() -> None:
            self.outcome = self.runner.run(name)
        self._scenario = threading.Thread(target=run, name='scenario',
                                          daemon=True)
        self._scenario.start()
        return True

    def check_daemons(self) -> None:
        """ClusterError when a daemon that no fault killed has exited."""
        for host in self.cluster.hosts:
            if host.killed:
                continue
            for name, daemon in (('broker', host.broker),
                                 ('agent', host.agent)):
                if daemon.proc is not None and not daemon.running():
                    tail = daemon.log_tail(600).strip().splitlines()
                    raise ClusterError(
                        'The %s of %s exited with status %s: %s (log %s)'
                        % (name, host.name, daemon.proc.returncode,
                           tail[-1] if tail else 'no log', daemon.log_path))

    def scenario_done(self) -> bool:
        return self._scenario is not None and not self._scenario.is_alive()

    def table(self) -> str:
        statuses = [(h.name, h.status()) for h in self.cluster.hosts]
        return cmd.format_table(screen.rows(statuses,
                                            self.runner.serving()))

    def summary(self) -> dict[str, Any]:
        out = scenarios.summary(self.outcome, self.timeline,
                                demo.intervals(self.cluster.tick_log),
                                self.runner.serving())
        out.update({'hosts': self.boot.hosts,
                    'fencing': self.cluster.fencing, 'port': self.port})
        return out

    def stop(self) -> None:
        for mount in self.mounts.values():
            mount.resume()
        self.cluster.stop()
        self.gateways.close()
        for mount in self.mounts.values():
            mount.stop()


class Keys:
    """Single key presses on a terminal (cbreak mode, restored at exit)."""

    def __init__(self, enabled: bool) -> None:
        self.fd: int | None = None
        self.saved: Any = None
        if enabled and sys.stdin.isatty() and sys.stdout.isatty():
            self.fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def read(self, timeout: float) -> str | None:
        """A key pressed within ``timeout`` s (None: none; waits anyway)."""
        if self.fd is None:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        return os.read(self.fd, 1).decode('ascii', 'replace')

    def restore(self) -> None:
        if self.fd is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.fd = None


def _watch(session: Session, stop: threading.Event, keys: Keys) -> None:
    """Show the screen until the scenario ends, --duration, q or a signal."""
    boot = session.boot
    interactive = keys.fd is not None
    deadline = (time.monotonic() + boot.duration
                if boot.duration is not None and not boot.scenario else None)
    shown = ''
    while not stop.is_set():
        session.check_daemons()
        if not boot.json:
            table = session.table()
            if interactive:
                events = session.timeline.events[-8:]
                sys.stdout.write('\x1b[2J\x1b[H%s  %d hosts, %s fencing, '
                                 'workload on http://127.0.0.1:%d/\n\n%s\n\n'
                                 '%s\n\nkeys: f failover, m maintenance, d '
                                 'degrade, s storage-stall, q quit\n' % (
                                     time.strftime('%H:%M:%S'),
                                     boot.hosts, session.cluster.fencing,
                                     session.port, table, '\n'.join(
                                         '+%7.2fs  %s' % (e.at, e.text)
                                         for e in events)))
                sys.stdout.flush()
            elif table != shown:
                print('%s\n%s\n' % (time.strftime('%H:%M:%S'), table),
                      flush=True)
                shown = table
        if session.scenario_done() and boot.scenario:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        key = keys.read(boot.refresh)
        if key == 'q':
            return
        if key in KEYS and not session.start_scenario(KEYS[key]):
            session.timeline.add('a scenario runs already')


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()
    stop = threading.Event()

    def body() -> int:
        boot = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        _validate(boot)
        fencing = _fencing(boot.fencing)
        own_dir = boot.workdir is None
        workdir = boot.workdir or tempfile.mkdtemp(prefix='hblc-')
        if not own_dir:
            os.makedirs(workdir, exist_ok=True)
            if not boot.force:
                _check_workdir(workdir, boot)
        removed = own_dir and not boot.keep

        def out(line: str) -> None:
            print(line, file=sys.stderr if boot.json else sys.stdout,
                  flush=True)

        keys = Keys(enabled=not boot.json and not boot.scenario)
        stallable = (boot.scenario == scenarios.STORAGE_STALL
                     or (keys.fd is not None and fuse.missing() is None))
        try:
            session = Session(boot, os.path.abspath(workdir), fencing, out,
                              stallable)
        except BaseException:
            keys.restore()
            raise
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            session.write_status_conf()
            out('%d hosts, %s fencing, work directory %s; workload on '
                'http://127.0.0.1:%d/' % (boot.hosts, fencing, workdir,
                                          session.port))
            session.timeline.add('starting %d brokers and agents'
                                 % boot.hosts)
            try:
                session.start()
                session.timeline.add('every broker answers; agents '
                                     'started')
                if boot.scenario:
                    session.start_scenario(boot.scenario)
                _watch(session, stop, keys)
            except ClusterError as err:
                # The daemons' logs say why: keep them, and say one line.
                removed = False
                raise ClusterError('%s (work directory %s kept)' % (
                    str(err).split('\n')[0].rstrip(':'), workdir)) from None
        finally:
            keys.restore()
            summary = session.summary()
            session.stop()
            summary['workdir'] = None if removed else workdir
            summary['config'] = None if removed else session.config
            if removed:
                shutil.rmtree(workdir, ignore_errors=True)
        if boot.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
        else:
            for line in scenarios.describe(summary):
                print(line)
            if not removed:
                print('kept %s: heartbeat-status --config-file %s'
                      % (workdir, session.config))
        return 0 if summary['ok'] else 1

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
