"""Simulated HA hosts on one machine: per host a broker and an agent.

::

    cluster = HaCluster(workdir, hosts=3, fencing='flock', port=8080)
    cluster.start()
    try:
        runner = cluster.wait_for_runner()
        runner.kill_all()                       # a host loses power
        cluster.wait_for_runner(exclude=runner)
        assert not overlaps(intervals(cluster.tick_log))
    finally:
        cluster.stop()

Every host shares one metadata file and one lease file (in the cluster's
storage directory) and has its own
:class:`~heartbeat.cluster.daemons.BrokerProcess` and
:class:`~heartbeat.cluster.daemons.AgentProcess`, each with its own config,
socket and log in the work directory.  The workload is
:mod:`heartbeat.cluster.demo`, ticking into one shared log (and, with
``port``, serving HTTP there), so that one can check that it never ran on
two hosts at once.

Fencing is ``sanlock`` (each host gets its own sanlock daemon,
``SANLOCK_RUN_DIR``, with io_timeout 1 s; sanlock still needs about 70 s to
declare a killed host dead) or ``flock`` (the kernel lock of
:mod:`heartbeat.fencing.flock`: exact on one machine, no daemon).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import os
import signal
import sys

from heartbeat.broker.status import BrokerStatus
from heartbeat import clock
from heartbeat.cluster.daemons import AgentProcess
from heartbeat.cluster.daemons import BrokerProcess
from heartbeat.cluster.daemons import init_area
from heartbeat.cluster.daemons import merged
from heartbeat.cluster.daemons import Sections
from heartbeat.cluster.errors import ClusterError
from heartbeat.cluster.sanlockd import fencing_section
from heartbeat.cluster.sanlockd import sanlock_init
from heartbeat.cluster.sanlockd import SanlockDaemon
from heartbeat import exception
from heartbeat.workload import process

RUNNING = 'running'
FENCERS = ('flock', 'sanlock')


class HaHost:
    """One simulated HA host: its broker, agent and (maybe) sanlock."""

    def __init__(self, cluster: HaCluster, host_id: int) -> None:
        workdir = cluster.workdir
        self.host_id = host_id
        self.name = 'host-%d' % host_id
        #: Where this host reaches the shared storage.
        self.storage_dir = cluster.host_storage_dir(host_id)
        metadata = os.path.join(self.storage_dir, 'metadata')
        self.sanlock: SanlockDaemon | None = None
        #: kill_all() ended this host's processes (a fault, not a crash).
        self.killed = False
        env = None
        if cluster.fencing == 'sanlock':
            self.sanlock = SanlockDaemon(
                os.path.join(workdir, 'sl%d' % host_id), name=self.name)
            env = self.sanlock.environ()
            fencing = fencing_section(
                self.sanlock, os.path.join(self.storage_dir, 'leases'))
        else:
            # The kernel's lock is one for the machine: the lease file is
            # reached directly, never through a host's stallable path.
            fencing = {'fencer': 'flock', 'lease_path': cluster.lease_path}
        self.broker = BrokerProcess(
            workdir, host_id, metadata,
            overrides=merged({'fencing': fencing,
                              'heartbeat': {'service_down_time': 2.0}},
                             cluster.broker_overrides,
                             cluster.host_overrides(host_id)), env=env)
        command = [sys.executable, '-m', 'heartbeat.cluster.demo',
                   '--log', cluster.tick_log, '--name', self.name]
        if cluster.port:
            command += ['--port', str(cluster.port)]
        self.agent = AgentProcess(self.broker, command,
                                  overrides=cluster.agent_overrides, env=env)

    def status(self) -> BrokerStatus | None:
        """This host's broker status (None if it does not answer)."""
        try:
            return self.broker.status()
        except exception.HeartbeatError:
            return None

    def agent_state(self) -> str | None:
        status = self.status()
        return None if status is None else status.own.state

    def runs_workload(self) -> bool:
        status = self.status()
        return bool(status is not None and status.own.state == RUNNING
                    and status.fencing.lease.held)

    def workload_pids(self, status: BrokerStatus | None = None) -> list[int]:
        """The workload processes of this host (lease holders, pid file).

        The pid file's process counts only while it is that very process
        (same start time), never a reused pid.
        """
        status = status or self.status()
        pids = [] if status is None else [
            h.pid for h in status.fencing.lease.holders]
        try:
            identity = process.read_pid_file(
                process.pid_file(self.agent.state_dir))
        except (OSError, ValueError):
            identity = None  # nothing readable recorded here
        if identity is not None and identity.alive():
            pids.append(identity.pid)
        return sorted(set(pids))

    def kill_all(self) -> None:
        """kill -9 every process of this host, as a host losing power.

        The sanlock daemon goes first: a daemon that outlived its workload
        would release the lease cleanly when the workload died, which a
        host losing power never does.  Then the workload, the broker and
        the agent.
        """
        self.killed = True
        pids = self.workload_pids()
        if self.sanlock is not None:
            self.sanlock.kill()
        for pid in pids:
            _kill(pid)
        self.broker.kill()
        self.agent.kill()

    def stop(self) -> None:
        self.agent.stop()
        for pid in self.workload_pids():
            _kill(pid)
        self.broker.stop()
        if self.sanlock is not None:
            self.sanlock.stop()


class HaCluster:
    """``hosts`` HA hosts sharing one metadata file and one lease file.

    ``fencing`` is ``sanlock`` or ``flock``; ``port`` makes the demo
    workload serve HTTP on 127.0.0.1:port.  ``broker_overrides`` and
    ``agent_overrides`` are options of every host, ``host_overrides(id)``
    broker options of one host over them.
    """

    def __init__(self, workdir: str, hosts: int = 3,
                 broker_overrides: Sections | None = None,
                 agent_overrides: Sections | None = None,
                 host_overrides: Callable[[int], Sections] | None = None,
                 storage_dir: str | None = None,
                 host_storage_dir: Callable[[int], str] | None = None,
                 fencing: str = 'sanlock', port: int | None = None
                 ) -> None:
        if fencing not in FENCERS:
            raise ClusterError('Unknown fencing %r: one of %s.'
                               % (fencing, ', '.join(FENCERS)))
        self.workdir = workdir
        self.fencing = fencing
        self.port = port
        #: The shared storage: the metadata file and the lease file.
        self.storage_dir = storage_dir or workdir
        #: The path through which one host (by id) reaches it (default: the
        #: same for all; a FUSE mount per host lets one stall).
        self.host_storage_dir: Callable[[int], str] = (
            host_storage_dir or (lambda host_id: self.storage_dir))
        self.metadata = os.path.join(self.storage_dir, 'metadata')
        self.lease_path = os.path.join(self.storage_dir, 'leases')
        self.tick_log = os.path.join(workdir, 'ticks.log')
        self.broker_overrides = broker_overrides or {}
        self.agent_overrides = agent_overrides or {}
        #: Broker options of one host (by host id) over the shared ones.
        self.host_overrides: Callable[[int], Sections] = (
            host_overrides or (lambda host_id: {}))
        self.hosts = [HaHost(self, i) for i in range(1, hosts + 1)]

    def start(self) -> HaCluster:
        """Format the storage, start every broker, then every agent.

        Raises :class:`ClusterError` when a daemon does not come up; what
        started is stopped again.
        """
        try:
            first = self.hosts[0]
            for host in self.hosts:
                if host.sanlock is not None:
                    host.sanlock.start()
            init_area(first.broker.config_path)
            if first.sanlock is not None:
                sanlock_init(first.broker.config_path, first.sanlock)
            for host in self.hosts:
                host.broker.start()
            for host in self.hosts:
                host.agent.start()
        except BaseException:
            self.stop()
            raise
        return self

    def runners(self) -> list[HaHost]:
        return [h for h in self.hosts if h.runs_workload()]

    def wait_for_runner(self, timeout: float = 60.0,
                        exclude: HaHost | None = None) -> HaHost:
        """The one host that runs the workload (not ``exclude``).

        Raises :class:`ClusterError` (with the daemons' logs) when there
        is none, or more than one, for ``timeout`` seconds.
        """
        def one() -> HaHost | None:
            found = [h for h in self.runners() if h is not exclude]
            return found[0] if len(found) == 1 else None
        found = clock.poll(one, timeout, interval=0.2)
        if found is None:
            raise ClusterError('No single host ran the workload within '
                               '%.0fs.\n%s' % (timeout, self.logs()))
        return found

    def logs(self) -> str:
        return '\n'.join('--- %s agent:\n%s\n--- %s broker:\n%s' % (
            h.name, h.agent.log_tail(2000), h.name, h.broker.log_tail(1500))
            for h in self.hosts)

    def stop(self) -> None:
        """Stop every agent first, then the rest of every host.

        With an agent still running, the workload stopped on one host
        would fail over to the next one during the shutdown.
        """
        for host in self.hosts:
            try:
                host.agent.stop()
            except Exception:  # noqa: S112 (stop every host, whatever)
                continue
        for host in self.hosts:
            try:
                host.stop()
            except Exception:  # noqa: S112 (stop every host, whatever)
                continue


@contextlib.contextmanager
def broker_with_agents(workdir: str, overrides: Sections | None = None,
                       start: bool = True
                       ) -> Iterator[tuple[BrokerProcess, list[AgentProcess]]]:
    """A broker (host 1, its own area in ``workdir``) and its agents' list.

    The broker is started unless ``start`` is false; every agent appended
    to the list is stopped before the broker.
    """
    broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'),
                           overrides=overrides)
    init_area(broker.config_path)
    agents: list[AgentProcess] = []
    try:
        if start:
            broker.start()
        yield broker, agents
    finally:
        for agent in agents:
            agent.stop()
        broker.stop()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
