"""WorkloadProcess registered with a real sanlock daemon, holding the real
workload lease acquired through a real broker (io_timeout 1 s)."""

import os

import pytest

from heartbeat.broker.status import BrokerStatus
from heartbeat.cluster.sanlockd import sanlock_init
from heartbeat.cluster.sanlockd import SanlockDaemon
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for
from heartbeat.workload.errors import WorkloadError
from heartbeat.workload.process import WorkloadProcess

pytestmark = [pytest.mark.sanlock, pytest.mark.broker]

RESOURCE = 'r heartbeat:workload'


def status_of(broker):
    with broker.client(timeout=5) as client:
        return BrokerStatus.from_dict(client.call('get_status'))


def registered(daemon, pid):
    """Whether the daemon lists ``pid`` as a registered client."""
    return any(line.split()[:2] == ['p', str(pid)]
               for line in daemon.client('status').stdout.splitlines())


def joined(broker):
    return status_of(broker).fencing.lockspace.state == 'joined'


@pytest.fixture(scope='module')
def host():
    """One host: its sanlock daemon and its broker, lockspace joined."""
    workdir = short_dir('hbwl')
    daemon = SanlockDaemon(os.path.join(workdir, 'sl'), name='host-1')
    daemon.start()
    broker = BrokerProcess(
        workdir, 1, os.path.join(workdir, 'metadata'),
        overrides={'fencing': {
            'fencer': 'sanlock', 'io_timeout': 1, 'join_timeout': 30,
            'lease_path': os.path.join(workdir, 'leases'),
            'sanlock_run_dir': daemon.run_dir}})
    try:
        init_area(broker.config_path)
        sanlock_init(broker.config_path, daemon)
        broker.start()
        wait_for(lambda: joined(broker), timeout=30)
        yield broker, daemon, workdir
    finally:
        broker.stop()
        daemon.stop()


@pytest.fixture
def workload(host, tmp_path):
    _, daemon, _ = host
    made = []

    def make(command=('sleep', '300')):
        work = WorkloadProcess(
            list(command), str(tmp_path / 'state'),
            sanlock_run_dir=daemon.run_dir, env=daemon.environ(),
            log_file=str(tmp_path / 'workload.log'))
        made.append(work)
        return work

    yield make
    for work in made:
        if work.identity is not None:
            work.kill()
            work.wait(10)


def test_the_registered_workload_holds_the_lease_and_is_adopted(host,
                                                                workload):
    broker, daemon, _ = host
    work = workload()
    pending = work.spawn()
    with broker.client(timeout=30) as client:
        client.acquire_lease(pending.pid)
    identity = pending.go()
    assert work.running()
    # sanlock itself names the workload, not a launcher, as the holder.
    listing = daemon.client('status').stdout
    assert RESOURCE in listing and str(identity.pid) in listing, listing
    holders = status_of(broker).fencing.lease.holders
    assert [h.pid for h in holders] == [identity.pid]
    # A new starter (the agent restarted) takes it over from the pid file.
    again = workload()
    assert again.adopt() == identity and again.running()
    again.stop()
    assert again.wait(10)
    # The lease ends with its holder process; the broker is told, as the
    # agent tells it.
    wait_for(lambda: RESOURCE not in daemon.client('status').stdout,
             timeout=15)
    with broker.client(timeout=30) as client:
        client.release_lease(identity.pid)
    again.forget()
    assert not status_of(broker).fencing.lease.holders


def test_an_aborted_workload_never_runs_and_holds_nothing(
        host, workload, tmp_path):
    broker, daemon, _ = host
    marker = tmp_path / 'ran'
    work = workload(['touch', str(marker)])
    pending = work.spawn()
    # Registered with the daemon while it waits for go ...
    assert registered(daemon, pending.pid)
    pending.abort()
    assert not marker.exists() and not work.running()
    holders = status_of(broker).fencing.lease.holders
    assert pending.pid not in [h.pid for h in holders]
    # ... and no longer once it has exited.
    wait_for(lambda: not registered(daemon, pending.pid), timeout=10)


def test_registration_with_a_daemon_that_is_not_there_fails_clearly(
        tmp_path):
    empty = tmp_path / 'run'
    empty.mkdir()
    work = WorkloadProcess(['sleep', '300'], str(tmp_path / 'state'),
                           sanlock_run_dir=str(empty),
                           log_file=str(tmp_path / 'log'),
                           env={**os.environ, 'SANLOCK_RUN_DIR': str(empty)})
    with pytest.raises(WorkloadError, match='did not register with sanlock'):
        work.spawn()
