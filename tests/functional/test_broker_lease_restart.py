"""A broker killed under a lease-holding workload: its successor reports the
holder again.  A real sanlock daemon (io_timeout 1 s), real broker processes
and a workload started through the holder launcher."""

import os
import signal
import subprocess

import pytest

from heartbeat.broker.status import BrokerStatus
from heartbeat.cluster.sanlockd import sanlock_init
from heartbeat.cluster.sanlockd import SanlockDaemon
from heartbeat.fencing import holders
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for
from heartbeat.workload import holder

pytestmark = [pytest.mark.sanlock, pytest.mark.broker]


def status_of(broker):
    with broker.client(timeout=5) as client:
        return BrokerStatus.from_dict(client.call('get_status'))


def joined(broker):
    fence = status_of(broker).fencing
    return fence.lockspace.state == 'joined' and fence


def hold_lease(broker, work):
    """Acquire the lease for the workload through the broker, let it run."""
    wait_for(lambda: joined(broker), timeout=30)
    with broker.client(timeout=30) as client:
        client.acquire_lease(work.pid)
    work.go()


def kill_hard(broker):
    """kill -9 the broker's master and worker, as a crash would."""
    os.killpg(broker.pid, signal.SIGKILL)
    broker.proc.wait()
    broker.stop()  # forgets the dead process


@pytest.fixture
def host():
    workdir = short_dir('hblr')
    daemon = SanlockDaemon(os.path.join(workdir, 'sl'), name='host-1')
    daemon.start()
    broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'),
                           overrides={'fencing': {
                               'fencer': 'sanlock', 'io_timeout': 1,
                               'join_timeout': 30,
                               'lease_path': os.path.join(workdir, 'leases'),
                               'sanlock_run_dir': daemon.run_dir}})
    work = None
    try:
        init_area(broker.config_path)
        sanlock_init(broker.config_path, daemon)
        broker.start()
        work = holder.spawn(['sleep', '300'], sanlock_run_dir=daemon.run_dir,
                            env=daemon.environ(), stderr=subprocess.DEVNULL)
        yield broker, daemon, work
    finally:
        if work is not None and work.proc.poll() is None:
            work.proc.kill()
            work.proc.wait()
        broker.stop()
        daemon.stop()


def test_holder_survives_a_broker_kill_and_is_lost_when_it_dies(host):
    broker, daemon, work = host
    hold_lease(broker, work)
    before = status_of(broker).fencing.lease
    assert [(h.pid, h.recovered) for h in before.holders] == [
        (work.pid, False)]
    # The holders file sits beside the broker's socket by default.
    recorded = holders.HoldersFile(
        os.path.splitext(broker.socket_path)[0] + '.holders').load()
    assert [r.pid for r in recorded.holders] == [work.pid]

    kill_hard(broker)
    assert work.proc.poll() is None  # the lease is the workload's, not ours
    assert str(work.pid) in daemon.client('status').stdout
    broker.start()

    lease = status_of(broker).fencing.lease
    assert lease.held, lease
    assert [(h.pid, h.recovered) for h in lease.holders] == [
        (work.pid, True)]
    assert lease.holders[0].age_s >= before.holders[0].age_s
    assert not lease.lost
    # The lockspace the dead broker joined is found joined again.
    wait_for(lambda: joined(broker), timeout=30)

    work.proc.kill()
    work.proc.wait()
    lease = wait_for(lambda: (lambda lease: lease if lease.lost else None)(
        status_of(broker).fencing.lease), timeout=10)
    assert not lease.held and not lease.holders
    assert lease.lost[0].pid == work.pid
    assert 'exited' in lease.lost[0].reason


def test_a_holder_that_died_with_the_broker_is_lost_at_start(host):
    broker, _, work = host
    hold_lease(broker, work)
    kill_hard(broker)
    work.proc.kill()
    work.proc.wait()
    broker.start()
    fence = status_of(broker).fencing
    assert not fence.lease.held
    assert [lost.pid for lost in fence.lease.lost] == [work.pid]
    assert 'exited' in fence.lease.lost[0].reason


def test_a_released_holder_is_not_taken_back(host):
    broker, _, work = host
    hold_lease(broker, work)
    with broker.client(timeout=30) as client:
        client.release_lease(work.pid)
    kill_hard(broker)
    broker.start()
    fence = status_of(broker).fencing
    assert not fence.lease.held and not fence.lease.lost
    assert work.proc.poll() is None


def test_a_lease_released_behind_the_broker_is_lost_at_start(host):
    # The process still runs, so only sanlock can tell that it no longer
    # holds the lease.
    broker, daemon, work = host
    hold_lease(broker, work)
    kill_hard(broker)
    resource = 'heartbeat:workload:%s:%d' % (
        broker.sections['fencing']['lease_path'], 1024 * 1024)
    out = daemon.client('release', '-r', resource, '-p', str(work.pid))
    assert out.returncode == 0, out.stdout + out.stderr
    broker.start()
    fence = status_of(broker).fencing
    assert not fence.lease.held
    assert [lost.pid for lost in fence.lease.lost] == [work.pid]
    assert 'sanlock lists no workload lease' in fence.lease.lost[0].reason
    assert work.proc.poll() is None
