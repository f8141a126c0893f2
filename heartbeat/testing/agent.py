"""Real HA hosts for tests: per host a sanlock daemon, a broker, an agent.

::

    cluster = HaCluster(short_dir('ha'), hosts=3)
    cluster.start()
    try:
        runner = cluster.wait_for_runner()
        ...
        assert not overlaps(intervals(cluster.tick_log))
    finally:
        cluster.stop()

Every host shares one metadata file and one sanlock lease file (in the
cluster's workdir) and has its own sanlock daemon (``SANLOCK_RUN_DIR``),
:class:`~heartbeat.testing.broker.BrokerProcess` and
:class:`AgentProcess`, each with its own config, socket and log.  The
workload is :mod:`heartbeat.testing.workload`, ticking into one shared log,
so a test can check that it never ran on two hosts at once.  Intervals are
short (io_timeout 1 s, sub-second reports); sanlock still needs about 70 s
to declare a killed host dead.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

from heartbeat.broker.status import BrokerStatus
from heartbeat import exception
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import DaemonProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import merged
from heartbeat.testing.broker import Sections
from heartbeat.testing.broker import short_dir
from heartbeat.testing.broker import wait_for
from heartbeat.testing.sanlock import fencing_section
from heartbeat.testing.sanlock import sanlock_init
from heartbeat.testing.sanlock import SanlockDaemon

#: Agent options every test host starts with: quick loops and timeouts.
AGENT_CONF: Sections = {
    'agent': {'loop_interval': 0.5, 'broker_timeout': 2.0,
              'migrate_after': 3, 'away_timeout': 2.0,
              'unexpected_down_time': 5.0, 'start_timeout': 20.0,
              'stop_timeout': 5.0, 'bad_health_timeout': 5.0},
    'workload': {'stop_signal': 'TERM'},
}

RUNNING = 'running'


class AgentProcess(DaemonProcess):
    """One heartbeat-agent process beside a broker.

    :meth:`kill` ends the agent's own process group only: the workload
    runs in a session of its own and survives it.
    """

    def __init__(self, broker: BrokerProcess, workload: list[str],
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        workdir = broker.workdir
        host_id = broker.host_id
        self.broker = broker
        self.config_path = os.path.join(workdir, 'agent-%d.conf' % host_id)
        self.log_path = os.path.join(workdir, 'agent-%d.log' % host_id)
        self.state_dir = os.path.join(workdir, 'state-%d' % host_id)
        os.makedirs(self.state_dir, exist_ok=True)
        self.sections = merged(
            {'heartbeat': dict(broker.sections['heartbeat']),
             'fencing': dict(broker.sections.get('fencing', {}))},
            AGENT_CONF, {
                'agent': {'broker_socket': broker.socket_path,
                          'state_dir': self.state_dir},
                'workload': {'command': ' '.join(workload),
                             'log_file': os.path.join(
                                 workdir, 'workload-%d.log' % host_id)},
            }, overrides or {})
        self.env = None if env is None else dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_conf()

    def start(self) -> AgentProcess:
        """Start the agent (it waits for its broker by itself)."""
        self._launch('heartbeat.cmd.agent')
        return self


class HaHost:
    """One simulated HA host: its sanlock daemon, broker and agent."""

    def __init__(self, cluster: HaCluster, host_id: int) -> None:
        workdir = cluster.workdir
        self.host_id = host_id
        self.name = 'host-%d' % host_id
        #: Where this host reaches the shared storage.
        self.storage_dir = cluster.host_storage_dir(host_id)
        metadata = os.path.join(self.storage_dir, 'metadata')
        leases = os.path.join(self.storage_dir, 'leases')
        self.sanlock = SanlockDaemon(os.path.join(workdir, 'sl%d' % host_id),
                                     name=self.name)
        env = self.sanlock.environ()
        fencing = fencing_section(self.sanlock, leases)
        self.broker = BrokerProcess(
            workdir, host_id, metadata,
            overrides=merged({'fencing': fencing,
                              'heartbeat': {'service_down_time': 2.0}},
                             cluster.broker_overrides,
                             cluster.host_overrides(host_id)), env=env)
        command = [sys.executable, '-m', 'heartbeat.testing.workload',
                   '--log', cluster.tick_log, '--name', self.name]
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

    def kill_all(self) -> None:
        """kill -9 every process of this host, as a host losing power.

        The sanlock daemon goes first: a daemon that outlived its workload
        would release the lease cleanly when the workload died, which a
        host losing power never does.  Then the workload, the broker and
        the agent.
        """
        status = self.status()
        holders = [] if status is None else [
            h.pid for h in status.fencing.lease.holders]
        self.sanlock.kill()
        for pid in holders:
            _kill(pid)
        self.broker.kill()
        self.agent.kill()

    def stop(self) -> None:
        self.agent.stop()
        status = self.status()
        for h in [] if status is None else status.fencing.lease.holders:
            _kill(h.pid)
        self.broker.stop()
        self.sanlock.stop()


class HaCluster:
    """``hosts`` HA hosts sharing one metadata file and one lease file."""

    def __init__(self, workdir: str, hosts: int = 3,
                 broker_overrides: Sections | None = None,
                 agent_overrides: Sections | None = None,
                 host_overrides: Callable[[int], Sections] | None = None,
                 storage_dir: str | None = None,
                 host_storage_dir: Callable[[int], str] | None = None
                 ) -> None:
        self.workdir = workdir
        #: The shared storage: the metadata file and the sanlock leases.
        self.storage_dir = storage_dir or workdir
        #: The path through which one host (by id) reaches it (default: the
        #: same for all; a FUSE mount per host lets a test stall one).
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
        first = self.hosts[0]
        for host in self.hosts:
            host.sanlock.start()
        init_area(first.broker.config_path)
        sanlock_init(first.broker.config_path, first.sanlock)
        for host in self.hosts:
            host.broker.start()
        for host in self.hosts:
            host.agent.start()
        return self

    def runners(self) -> list[HaHost]:
        return [h for h in self.hosts if h.runs_workload()]

    def wait_for_runner(self, timeout: float = 60.0,
                        exclude: HaHost | None = None) -> HaHost:
        """The one host that runs the workload (not ``exclude``)."""
        def one() -> HaHost | None:
            found = [h for h in self.runners() if h is not exclude]
            return found[0] if len(found) == 1 else None
        try:
            found = wait_for(one, timeout=timeout, step=0.2)
        except AssertionError as err:
            raise AssertionError('%s\n%s' % (err, self.logs())) from None
        assert found is not None
        return found

    def logs(self) -> str:
        return '\n'.join('--- %s agent:\n%s\n--- %s broker:\n%s' % (
            h.name, h.agent.log_tail(2000), h.name, h.broker.log_tail(1500))
            for h in self.hosts)

    def stop(self) -> None:
        for host in self.hosts:
            try:
                host.stop()
            except Exception:  # noqa: S112 (stop every host, whatever)
                continue


@contextlib.contextmanager
def broker_with_agents(prefix: str, overrides: Sections | None = None,
                       start: bool = True
                       ) -> Iterator[tuple[BrokerProcess, list[AgentProcess]]]:
    """A broker (host 1, its own area) and a list for its agents.

    The broker is started unless ``start`` is false; every agent a test
    appends is stopped before the broker.
    """
    workdir = short_dir(prefix)
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
