"""SIGHUP under a real sanlock daemon: the lockspace and the lease stay."""

import os
import signal
import subprocess
import threading
import time

import pytest

from heartbeat.cluster.sanlockd import sanlock_init
from heartbeat.cluster.sanlockd import SanlockDaemon
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for
from heartbeat.workload import holder

pytestmark = [pytest.mark.sanlock, pytest.mark.broker]


class SanlockWatcher(threading.Thread):
    """Polls ``sanlock client status`` until stopped."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.sanlock = daemon
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            out = self.sanlock.client('status').stdout
            self.samples.append(('s heartbeat:1:' in out,
                                 'r heartbeat:workload' in out))
            time.sleep(0.05)

    def finish(self):
        self.done.set()
        self.join(15)
        return self.samples


@pytest.fixture
def host():
    workdir = short_dir('hbrl')
    daemon = SanlockDaemon(os.path.join(workdir, 'sl'), name='host-1')
    daemon.start()
    broker = BrokerProcess(
        workdir, 1, os.path.join(workdir, 'metadata'), overrides={
            'fencing': {'fencer': 'sanlock', 'io_timeout': 1,
                        'lease_path': os.path.join(workdir, 'leases'),
                        'join_timeout': 30,
                        'sanlock_run_dir': daemon.run_dir}})
    procs = []
    try:
        init_area(broker.config_path)
        sanlock_init(broker.config_path, daemon)
        broker.start()
        yield broker, daemon, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()
        daemon.stop()


def joined(broker):
    fence = broker.status().fencing
    return fence.lockspace.state == 'joined' and fence


def test_sighup_keeps_the_lockspace_and_the_lease(host):
    broker, daemon, procs = host
    wait_for(lambda: joined(broker), timeout=30)
    hosts = wait_for(lambda: broker.status().fencing.hosts, timeout=15)
    generation = hosts[0].generation
    work = holder.spawn(['sleep', '300'], sanlock_run_dir=daemon.run_dir,
                        env=daemon.environ(), stderr=subprocess.DEVNULL)
    procs.append(work.proc)
    with broker.client(timeout=30) as client:
        client.acquire_lease(work.pid)
    work.go()
    pid = broker.status().host.pid
    watcher = SanlockWatcher(daemon)
    watcher.start()
    wait_for(lambda: len(watcher.samples) > 3)

    broker.sections['fencing'].update(join_timeout=45, io_timeout=2)
    broker.write_conf()
    broker.signal(signal.SIGHUP)
    status = wait_for(lambda: (lambda s: s if s.reload.count else None)(
        broker.status()))
    # Long enough for a leave and a rejoin (about 3 s) to show.
    time.sleep(4)
    samples = watcher.finish()

    assert status.reload.applied == ['fencing.join_timeout']
    assert status.reload.restart_needed == ['fencing.io_timeout']
    # sanlock saw the lockspace and the lease all along.
    assert samples and all(s == (True, True) for s in samples), samples
    status = broker.status()
    fence = status.fencing
    assert status.host.pid == pid
    assert fence.lockspace.state == 'joined'
    assert fence.lease.held
    assert fence.lease.holders[0].pid == work.pid
    # A rejoin would have started a new generation of the delta lease.
    assert fence.hosts[0].generation == generation
    assert work.proc.poll() is None
    with broker.client(timeout=30) as client:
        client.release_lease(work.pid)
