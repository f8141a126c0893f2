"""One heartbeat-broker or heartbeat-agent process of a simulated host.

::

    broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    init_area(broker.config_path)       # format the shared metadata file
    broker.start()                      # waits until the broker answers
    agent = AgentProcess(broker, ['my-workload', '--serve']).start()
    ...
    agent.stop()
    broker.stop()

Each process runs ``python -m heartbeat.cmd.broker`` (or ``.agent``) from
the current interpreter with its own config file, unix socket and log file
in ``workdir`` (keep it short: unix socket paths are limited to 108
bytes), in its own session so that signals reach it alone.  The defaults
in :data:`BASE_CONF` and :data:`AGENT_CONF` keep every interval short and
use ``fencing = none``; pass ``overrides`` to change any section, or edit
:attr:`DaemonProcess.sections` and call :meth:`DaemonProcess.write_conf`
before sending SIGHUP.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import os
import signal
import subprocess
import sys
import time
from typing import Any

from oslo_config import cfg

from heartbeat.broker.client import BrokerClient
from heartbeat.broker import errors
from heartbeat.broker.status import BrokerStatus
from heartbeat.cluster.errors import ClusterError
from heartbeat import conf as hb_conf
from heartbeat.drivers.storage import admin

Sections = dict[str, dict[str, Any]]

#: Options every simulated broker starts with: fast intervals, no fencing.
BASE_CONF: Sections = {
    'DEFAULT': {'graceful_shutdown_timeout': 10},
    'heartbeat': {'report_interval': 0.2, 'service_down_time': 1.0},
    'heartbeat_storage': {'max_hosts': 16, 'claim_timeout': 0},
    'broker': {'storage_stall_after': 1.0, 'connect_retry_interval': 0.2,
               'domain_monitor_interval': 0.2,
               'domain_probe_timeout': 1.0},
    'fencing': {'fencer': 'none'},
    'submonitors': {'interval': 0.2,
                    'enabled': 'network,cpu_load,free_memory,'
                               'storage_domain'},
}

#: Agent options every simulated host starts with: quick loops, timeouts.
AGENT_CONF: Sections = {
    'agent': {'loop_interval': 0.5, 'broker_timeout': 2.0,
              'migrate_after': 3, 'away_timeout': 2.0,
              'unexpected_down_time': 5.0, 'start_timeout': 20.0,
              'stop_timeout': 5.0, 'bad_health_timeout': 5.0},
    'workload': {'stop_signal': 'TERM'},
}


def write_conf(path: str, sections: Mapping[str, Mapping[str, Any]]) -> None:
    """Write ``sections`` as an ini file."""
    with open(path, 'w', encoding='utf-8') as f:
        for section, values in sections.items():
            f.write('[%s]\n' % section)
            for key, value in values.items():
                f.write('%s = %s\n' % (key, value))
            f.write('\n')


def merged(*layers: Mapping[str, Mapping[str, Any]]) -> Sections:
    """The sections of ``layers``, later layers winning per option."""
    out: Sections = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def load_conf(config_path: str) -> cfg.ConfigOpts:
    """heartbeat's options from ``config_path`` alone (no /etc files)."""
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf(['--config-file', config_path], project='heartbeat',
         default_config_files=[], default_config_dirs=[])
    return conf


def init_area(config_path: str) -> None:
    """Format the metadata area named by a config file (wipes it)."""
    admin.init_area(load_conf(config_path), force=True)


class DaemonProcess:
    """A daemon in its own session, with a config file and a log file.

    Subclasses set the paths and :attr:`sections` and start the daemon
    with :meth:`_launch`; this class writes its config, stops it and reads
    its log.
    """

    config_path: str
    log_path: str
    sections: Sections
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def write_conf(self) -> None:
        """Write :attr:`sections` to the daemon's config file."""
        write_conf(self.config_path, self.sections)

    def _launch(self, module: str) -> subprocess.Popen[bytes]:
        """Run ``python -m module --config-file ...`` in its own session."""
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(
                [sys.executable, '-m', module, '--config-file',
                 self.config_path],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True)
        return self.proc

    def running(self) -> bool:
        """Whether the daemon's master process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the daemon and wait; SIGKILL its group after ``timeout``.

        Returns the exit status, or None if it was not running.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def log_tail(self, size: int = 4000) -> str:
        """The end of the daemon's log, for failure messages."""
        try:
            with open(self.log_path, 'rb') as f:
                return f.read()[-size:].decode('utf-8', 'replace')
        except OSError as err:
            return '(no log: %s)' % err

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the daemon's master process."""
        if self.proc is None:
            raise ClusterError('the daemon is not running: call start()')
        os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the daemon's process group (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class BrokerProcess(DaemonProcess):
    """One heartbeat-broker process with its own config and socket."""

    def __init__(self, workdir: str, host_id: int, metadata: str,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.host_id = host_id
        self.socket_path = os.path.join(workdir, 'b%d.sock' % host_id)
        self.config_path = os.path.join(workdir, 'broker-%d.conf' % host_id)
        self.log_path = os.path.join(workdir, 'broker-%d.log' % host_id)
        self.sections = merged(BASE_CONF, {
            'heartbeat': {'host_id': host_id, 'host': 'host-%d' % host_id},
            'heartbeat_storage': {'path': metadata},
            'broker': {'socket_path': self.socket_path},
        }, overrides or {})
        self.env = None if env is None else dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_conf()

    @property
    def pid(self) -> int:
        """Process id of the broker's master process."""
        if self.proc is None:
            raise ClusterError('the broker is not running: call start()')
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        """Start the broker and wait until it answers ping.

        Raises :class:`ClusterError` with the end of its log if it does
        not answer within ``timeout`` seconds (it is stopped then).
        """
        proc = self._launch('heartbeat.cmd.broker')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            client = self.client(timeout=1.0)
            try:
                client.ping()
                return self
            except errors.BrokerError:
                time.sleep(0.05)
            finally:
                client.close()
        self.stop()
        raise ClusterError('heartbeat-broker of host %d did not answer; '
                           'log %s:\n%s' % (self.host_id, self.log_path,
                                            self.log_tail()))

    def client(self, timeout: float = 2.0) -> BrokerClient:
        """A new client of this broker (close it, or use it in ``with``)."""
        return BrokerClient(self.socket_path, timeout=timeout)

    def status(self, timeout: float = 2.0) -> BrokerStatus:
        """The broker's status, typed."""
        with self.client(timeout) as client:
            return client.get_status()


class AgentProcess(DaemonProcess):
    """One heartbeat-agent process beside a broker.

    :meth:`kill` ends the agent's own process group only: the workload
    runs in a session of its own and survives it.
    """

    def __init__(self, broker: BrokerProcess, workload: Sequence[str],
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
