"""Real heartbeat-broker processes for the broker's functional tests.

(No tests here: the helpers are shared by tests/functional/test_broker_*.py
and test_sanlock_*.py.)
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

from heartbeat.broker.client import BrokerClient
from heartbeat.broker import errors
from heartbeat.cmd import make_conf
from heartbeat.drivers.storage import admin

BASE_CONF = {
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


def short_dir(prefix='hb'):
    """A short directory (unix socket paths must stay below 108 bytes)."""
    return tempfile.mkdtemp(prefix=prefix)


def write_conf(path, sections):
    with open(path, 'w', encoding='utf-8') as f:
        for section, values in sections.items():
            f.write('[%s]\n' % section)
            for key, value in values.items():
                f.write('%s = %s\n' % (key, value))
            f.write('\n')


def merged(*layers):
    out = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


def init_area(config_path):
    conf = make_conf(['--config-file', config_path], [], '', quiet=True)
    admin.init_area(conf, force=True)


def wait_for(predicate, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise AssertionError('condition not met within %.1fs (last: %r)'
                         % (timeout, last))


class BrokerProcess:
    """One heartbeat-broker process with its own config and socket."""

    def __init__(self, workdir, host_id, metadata, overrides=None,
                 env=None):
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
        self.env = env
        self.proc = None
        self.write_conf()

    def write_conf(self):
        write_conf(self.config_path, self.sections)

    def start(self, timeout=30.0):
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                [sys.executable, '-m', 'heartbeat.cmd.broker',
                 '--config-file', self.config_path],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True)
        finally:
            log.close()
        client = self.client(timeout=1.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                client.ping()
                return self
            except errors.BrokerError:
                time.sleep(0.05)
            finally:
                client.close()
        self.stop()
        raise AssertionError('heartbeat-broker did not answer; log:\n%s'
                             % self.log_tail())

    def client(self, timeout=2.0):
        return BrokerClient(self.socket_path, timeout=timeout)

    def status(self, timeout=2.0):
        with self.client(timeout) as client:
            return client.get_status()

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    def stop(self, timeout=30.0):
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

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read()[-size:].decode('utf-8', 'replace')
        except OSError as err:
            return '(no log: %s)' % err
