"""sanlock fencing through real heartbeat-broker processes and a real
sanlock daemon per simulated host (io_timeout 1 s for speed)."""

import os
import subprocess
import sys
import time

import pytest

from heartbeat.broker import errors
from heartbeat.cluster.sanlockd import sanlock_init
from heartbeat.cluster.sanlockd import SanlockDaemon
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for
from heartbeat.workload import holder

pytestmark = [pytest.mark.sanlock, pytest.mark.broker]

MiB = 1024 * 1024


def fencing(daemon, leases):
    return {'fencing': {'fencer': 'sanlock', 'lease_path': leases,
                        'io_timeout': 1, 'join_timeout': 30,
                        'sanlock_run_dir': daemon.run_dir}}


def joined(broker):
    fence = broker.status().fencing
    assert fence.lockspace.state in ('joining', 'joined'), fence
    return fence.lockspace.state == 'joined' and fence


def lease_of(broker):
    return broker.status().fencing.lease


@pytest.fixture
def host1():
    workdir = short_dir('hbsl')
    daemon = SanlockDaemon(os.path.join(workdir, 'sl1'), name='host-1')
    daemon.start()
    leases = os.path.join(workdir, 'leases')
    broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'),
                           overrides=fencing(daemon, leases))
    init_area(broker.config_path)
    sanlock_init(broker.config_path, daemon)
    broker.start()
    procs = []
    try:
        yield broker, daemon, leases, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()
        daemon.stop()


def spawn_workload(daemon, procs):
    work = holder.spawn(['sleep', '300'], sanlock_run_dir=daemon.run_dir,
                        env=daemon.environ(), stderr=subprocess.DEVNULL)
    procs.append(work.proc)
    return work


def test_sanlock_init_refuses_to_wipe_a_lockspace(host1):
    broker, daemon, _, _ = host1
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.storage', '--config-file',
         broker.config_path, 'sanlock-init'], env=daemon.environ(),
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert '--force' in proc.stderr


def test_join_acquire_release_and_leave(host1):
    broker, daemon, _, procs = host1
    fence = wait_for(lambda: joined(broker), timeout=30)
    assert fence.safe is True and fence.host_id == 1
    hosts = wait_for(lambda: broker.status().fencing.hosts,
                     timeout=15)
    assert (hosts[0].host_id, hosts[0].state) == (1, 'live'), hosts
    work = spawn_workload(daemon, procs)
    with broker.client(timeout=30) as client:
        client.acquire_lease(work.pid)
        work.go()
        lease = lease_of(broker)
        assert lease.held and lease.holders[0].pid == work.pid
        # sanlock itself lists the workload's pid as the lease holder.
        status = daemon.client('status').stdout
        assert ('r heartbeat:workload' in status
                and str(work.pid) in status), status
        with pytest.raises(errors.RemoteError) as info:
            client.lockspace_leave()
        assert info.value.kind == 'LockspaceError'
        client.release_lease(work.pid)
        assert not lease_of(broker).held
        assert 'r heartbeat:workload' not in daemon.client('status').stdout
        assert work.proc.poll() is None
        client.acquire_lease(work.pid)
        client.release_lease(work.pid)
        assert client.lockspace_leave()['lockspace']['state'] == 'left'
        assert 's heartbeat:1' not in daemon.client('status').stdout
        client.lockspace_join()
        wait_for(lambda: joined(broker), timeout=30)


def test_lease_holder_is_killed_when_the_lease_is_lost(host1):
    broker, daemon, leases, procs = host1
    wait_for(lambda: joined(broker), timeout=30)
    work = spawn_workload(daemon, procs)
    with broker.client(timeout=30) as client:
        client.acquire_lease(work.pid)
    work.go()
    # Destroy this host's delta lease on the shared storage: renewals fail
    # and sanlock must kill the lease holder (after ~8 x io_timeout at
    # most).
    with open(leases, 'r+b') as f:
        f.write(bytes(MiB))
        f.flush()
        os.fsync(f.fileno())
    start = time.monotonic()
    code = work.proc.wait(timeout=60)
    assert code < 0, code  # killed by a signal
    assert time.monotonic() - start < 30
    lease = wait_for(lambda: (lambda lease: lease if lease.lost
                              else None)(lease_of(broker)), timeout=10)
    assert not lease.held
    assert lease.lost[0].pid == work.pid
    fence = wait_for(lambda: (lambda f: f if f.lockspace.state ==
                              'failed' else None)(broker.status().fencing),
                     timeout=30)
    assert fence.lockspace.error


def test_only_one_host_holds_the_lease():
    workdir = short_dir('hbs2')
    leases = os.path.join(workdir, 'leases')
    metadata = os.path.join(workdir, 'metadata')
    daemons = [SanlockDaemon(os.path.join(workdir, 'sl%d' % i),
                             name='host-%d' % i) for i in (1, 2)]
    brokers = []
    procs = []
    try:
        for d in daemons:
            d.start()
        for i, d in enumerate(daemons, 1):
            brokers.append(BrokerProcess(workdir, i, metadata,
                                         overrides=fencing(d, leases)))
        init_area(brokers[0].config_path)
        sanlock_init(brokers[0].config_path, daemons[0])
        for b in brokers:
            b.start()
        for b in brokers:
            wait_for(lambda b=b: joined(b), timeout=30)
        first = spawn_workload(daemons[0], procs)
        second = spawn_workload(daemons[1], procs)
        with brokers[0].client(timeout=30) as c1, \
                brokers[1].client(timeout=30) as c2:
            c1.acquire_lease(first.pid)
            with pytest.raises(errors.RemoteError) as info:
                c2.acquire_lease(second.pid)
            assert info.value.kind == 'LeaseBusy', info.value
            assert not lease_of(brokers[1]).held
            c1.release_lease(first.pid)
            c2.acquire_lease(second.pid)
            assert lease_of(brokers[1]).held
            c2.release_lease(second.pid)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for b in brokers:
            b.stop()
        for d in daemons:
            d.stop()
