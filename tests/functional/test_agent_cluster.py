"""The HA agent on three real hosts: per host a sanlock daemon (io_timeout
1 s), a heartbeat-broker and a heartbeat-agent, one shared metadata file
and lease file, and a workload that ticks into a shared log so that every
test can check that it never ran on two hosts at once."""

import os
import signal
import subprocess
import sys
import time

import pytest

from heartbeat.cluster.demo import intervals
from heartbeat.cluster.demo import overlaps
from heartbeat.cluster.fuse import PausableMount
from heartbeat.cluster.gateways import Gateways
from heartbeat.testing.agent import HaCluster
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for

pytestmark = [pytest.mark.sanlock, pytest.mark.broker]

LOOP = 0.5
DOWN_TIME = 2.0


@pytest.fixture
def cluster():
    gateways = Gateways(range(1, 4))
    ha = HaCluster(short_dir('hbha'), hosts=3,
                   agent_overrides={'agent': {'loop_interval': LOOP}},
                   host_overrides=gateways.overrides)
    ha.gateways = gateways
    try:
        ha.start()
        yield ha
    finally:
        ha.stop()
        gateways.close()


def assert_never_two(ha):
    runs = intervals(ha.tick_log)
    assert runs, 'the workload never ran'
    assert overlaps(runs) == [], runs


def maintenance(host, mode):
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.maintenance', '--config-file',
         host.broker.config_path, '--mode', mode, '--json'],
        capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def adopted(host):
    """The status once the host's new agent went starting -> running.

    The killed agent may still have posted "running" to the restarted
    broker; only the new agent's own transition proves the adoption.
    """
    status = host.status()
    if status is None or status.own.state != 'running':
        return None
    history = status.own.payload.get('agent', {}).get('history', [])
    latest = history[0] if history else {}
    return status if (latest.get('old'), latest.get('new')) == (
        'starting', 'running') else None


def workload_pid(host):
    holders = host.broker.status().fencing.lease.holders
    assert len(holders) == 1, holders
    return holders[0].pid


def test_cold_start_moves_and_maintenance(cluster):
    ha = cluster
    # (a) cold start: one host runs it, once the lockspaces are joined and
    # the peers were observed for service_down_time.
    wait_for(lambda: all(
        h.status() and h.status().fencing.lockspace.state == 'joined'
        for h in ha.hosts), timeout=60, interval=0.2)
    joined_at = time.monotonic()
    runner = ha.wait_for_runner(timeout=DOWN_TIME + 2 * LOOP + 15)
    cold = time.monotonic() - joined_at
    assert len(ha.runners()) == 1
    assert cold < DOWN_TIME + 2 * LOOP + 10, cold

    # (g) a clearly better peer takes over only after migrate_after loops:
    # cut the runner's gateway (network penalty 1600).
    ha.gateways.cut(runner.host_id)
    cut_at = time.monotonic()
    wait_for(lambda: runner.status().own.score <= 1800, timeout=20)
    second = ha.wait_for_runner(timeout=30, exclude=runner)
    moved = time.monotonic() - cut_at
    assert moved >= 3 * LOOP
    history = runner.status().own.payload['agent']['history']
    assert any('>=' in t['reason'] for t in history), history

    # (b) local maintenance on the running host: the workload moves.
    maintenance(second, 'local')
    third = ha.wait_for_runner(timeout=30, exclude=second)
    assert third is not second
    wait_for(lambda: second.agent_state() == 'local_maintenance',
             timeout=20)
    assert second.status().own.score == 0
    maintenance(second, 'none')

    # (f) global maintenance: a killed workload is not restarted until it
    # is cleared.
    maintenance(third, 'global')
    wait_for(lambda: all(h.agent_state() == 'global_maintenance'
                         for h in ha.hosts), timeout=20)
    os.kill(workload_pid(third), signal.SIGKILL)
    time.sleep(5 * LOOP)
    assert ha.runners() == []
    assert all(not h.status().fencing.lease.held for h in ha.hosts)
    maintenance(third, 'none')
    fourth = ha.wait_for_runner(timeout=30)

    # (e) kill -9 the broker, then the agent, under the running workload:
    # it keeps running and is adopted again.
    pid = workload_pid(fourth)
    fourth.broker.proc.send_signal(signal.SIGKILL)
    fourth.broker.proc.wait()
    fourth.broker.start()
    fourth.agent.kill()
    fourth.agent.start()
    status = wait_for(lambda: adopted(fourth), timeout=30)
    assert [h.pid for h in status.fencing.lease.holders] == [pid]
    assert ha.runners() == [fourth]
    assert_never_two(ha)


def test_host_death_fails_over_after_sanlock_declares_it_dead(cluster):
    ha = cluster
    runner = ha.wait_for_runner(timeout=60)
    others = [h for h in ha.hosts if h is not runner]
    killed_at = time.monotonic()
    runner.kill_all()
    new = wait_for(lambda: (lambda r: r[0] if len(r) == 1 else None)(
        [h for h in others if h.runs_workload()]), timeout=150, interval=0.5)
    failover = time.monotonic() - killed_at
    # sanlock's host-dead time with io_timeout 1 is about 70 s.
    assert 40 < failover < 120, failover
    assert new in others
    assert_never_two(ha)


@pytest.fixture
def stallable():
    """Three hosts, each with its own FUSE mount of the shared storage.

    One directory seen through three mounts: one host's storage can be
    stalled while the others' works.
    """
    workdir = short_dir('hbst')
    shared = os.path.join(workdir, 'shared')
    os.makedirs(shared)
    mounts = {i: PausableMount(os.path.join(workdir, 'm%d' % i),
                               source=shared) for i in (1, 2, 3)}
    for mount in mounts.values():
        mount.start()
    ha = HaCluster(workdir, hosts=3,
                   agent_overrides={'agent': {'loop_interval': LOOP}},
                   storage_dir=shared,
                   host_storage_dir=lambda i: mounts[i].mountpoint)
    ha.mounts = mounts
    try:
        ha.start()
        yield ha
    finally:
        for mount in mounts.values():
            mount.resume()
        ha.stop()
        for mount in mounts.values():
            mount.stop()


@pytest.mark.fuse
def test_storage_lost_on_the_runner_kills_its_workload_first(stallable):
    ha = stallable
    runner = ha.wait_for_runner(timeout=60)

    def last_tick():
        return max((r.last for r in intervals(ha.tick_log)
                    if r.host == runner.name), default=None)

    # The workload has ticked at least once before its storage stalls.
    wait_for(last_tick, timeout=20, interval=0.2)
    stalled_at = time.time()
    ha.mounts[runner.host_id].pause()
    # sanlock cannot renew the runner's lease: it kills the workload there
    # (after about 8 x io_timeout) ...
    wait_for(lambda: time.time() - last_tick() > 3, timeout=40, interval=0.5)
    # ... long before another host may take the lease (host dead: ~70 s).
    others = [h for h in ha.hosts if h is not runner]
    new = wait_for(lambda: (lambda r: r[0] if len(r) == 1 else None)(
        [h for h in others if h.runs_workload()]), timeout=150, interval=0.5)
    runs = intervals(ha.tick_log)
    killed = max(r.last for r in runs if r.host == runner.name)
    started = min(r.first for r in runs if r.host == new.name)
    assert killed - stalled_at < 30, killed - stalled_at
    assert started > killed
    assert_never_two(ha)
