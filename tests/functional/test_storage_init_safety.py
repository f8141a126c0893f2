"""Initialising a metadata area or a lockspace refuses while members use
it, and when it cannot tell (real member processes, a stalled FUSE mount,
a real sanlock daemon)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from heartbeat.cluster.fuse import PausableMount
from heartbeat.cluster.sanlockd import fencing_section
from heartbeat.cluster.sanlockd import SanlockDaemon
from heartbeat.drivers.storage import admin
from heartbeat.testing.broker import short_dir
from heartbeat.testing.members import StorageCluster
from heartbeat.testing.waiting import wait_for

pytestmark = pytest.mark.storage

INTERVAL = 0.2


# Third-party deprecation warnings are not this project's messages.
ENV = dict(os.environ, PYTHONWARNINGS='ignore')


def run_cli(module, *args, timeout=60):
    return subprocess.run([sys.executable, '-m', module, *args],
                          capture_output=True, text=True, timeout=timeout,
                          check=False, env=ENV)


def assert_refused(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def cluster(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=INTERVAL,
                        service_down_time=1.0, max_hosts=16) as cl:
        yield cl


def test_init_refuses_while_members_write_and_force_wipes(cluster):
    for host_id in (1, 2):
        cluster.start_member(host_id)
        cluster.wait_joined(host_id)
    proc = run_cli('heartbeat.cmd.storage', '--config-file',
                   cluster.config_path, 'init')
    assert_refused(proc, 'live members are writing', 'host_id 1 (member-1)',
                   'host_id 2 (member-2)', '--force')
    assert cluster.read_slot(1) is not None
    assert cluster.read_slot(2) is not None

    forced = run_cli('heartbeat.cmd.storage', '--config-file',
                     cluster.config_path, 'init', '--force')
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith('Initialised ')


def test_init_goes_ahead_once_members_stopped(cluster):
    cluster.start_member(1)
    cluster.wait_joined(1)
    assert cluster.stop_member(1) == 0
    proc = run_cli('heartbeat.cmd.storage', '--config-file',
                   cluster.config_path, 'init')
    assert proc.returncode == 0, proc.stderr
    assert cluster.read_slot(1) is None


def test_second_local_cluster_on_a_running_workdir_refuses(tmp_path):
    workdir = str(tmp_path / 'cluster')
    out_path = str(tmp_path / 'first.out')
    with open(out_path, 'wb') as out:
        first = subprocess.Popen(
            [sys.executable, '-m', 'heartbeat.cmd.local_cluster',
             '--workdir', workdir, '--hosts', '2', '--interval', '0.2',
             '--down-time', '1.0', '--refresh', '0.2', '--duration', '120'],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        def output():
            with open(out_path, encoding='utf-8') as f:
                return f.read()

        # Its brokers write, and the workload serves on one host.
        wait_for(lambda: ' serving ' in output(), timeout=60.0)
        second = run_cli('heartbeat.cmd.local_cluster', '--workdir',
                         workdir, '--hosts', '2', '--duration', '1')
        assert_refused(second, 'Refusing to re-initialise',
                       'members are writing it', 'host_id 1 (host-1)')
        # The first cluster kept its hosts and its workload.
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=60)
    assert code == 0, output()[-3000:]
    assert 'never two: ok' in output()


@pytest.mark.fuse
def test_init_on_a_stalled_area_refuses_in_bounded_time(tmp_path):
    with PausableMount(short_dir('hbfuse')) as mount:
        cluster = StorageCluster(short_dir(), report_interval=INTERVAL,
                                 service_down_time=1.0, max_hosts=16)
        path = os.path.join(mount.mountpoint, 'metadata')
        with open(cluster.config_path, 'a', encoding='utf-8') as f:
            f.write('\n[heartbeat_storage]\npath = %s\n' % path)
        conf = cluster.make_conf()
        admin.init_area(conf, force=True)
        err_path = str(tmp_path / 'init.err')
        mount.pause()
        try:
            start = time.monotonic()
            with open(err_path, 'wb') as err:
                proc = subprocess.Popen(
                    [sys.executable, '-m', 'heartbeat.cmd.storage',
                     '--config-file', cluster.config_path, 'init',
                     '--watch', '0.5', '--io-timeout', '1'],
                    stdout=subprocess.DEVNULL, stderr=err, env=ENV)

            def refused():
                with open(err_path, encoding='utf-8') as f:
                    return 'error:' in f.read()

            wait_for(refused, timeout=10.0)
            took = time.monotonic() - start
        finally:
            # A thread blocked in a stalled FUSE call keeps the process
            # from exiting (the kernel waits for the answer): the refusal
            # is said in bounded time, the exit follows the storage.
            mount.resume()
        assert proc.wait(timeout=30) == 2
        with open(err_path, encoding='utf-8') as f:
            text = f.read()
        proc_like = subprocess.CompletedProcess(proc.args, 2, '', text)
        assert_refused(proc_like, 'Cannot tell whether members are writing',
                       'did not answer within 1.0s', 'refusing')
        assert took < 10.0
        # The area was not touched: it still reads as initialised.
        glob, _rows = admin.dump_area(conf)
        assert glob.get('max_hosts') == 16


@pytest.mark.sanlock
def test_sanlock_init_refuses_a_lockspace_it_cannot_read():
    workdir = short_dir('hbsl')
    with SanlockDaemon(workdir) as daemon:
        lease = os.path.join(workdir, 'leases')
        config = os.path.join(workdir, 'heartbeat.conf')
        with open(config, 'w', encoding='utf-8') as f:
            f.write('[fencing]\n' + ''.join(
                '%s = %s\n' % item
                for item in fencing_section(daemon, lease).items()))
        env = dict(daemon.environ(), PYTHONWARNINGS='ignore')

        def sanlock_init(*args):
            return subprocess.run(
                [sys.executable, '-m', 'heartbeat.cmd.storage',
                 '--config-file', config, 'sanlock-init', *args],
                capture_output=True, text=True, timeout=60, check=False,
                env=env)

        first = sanlock_init()
        assert first.returncode == 0, first.stderr
        assert_refused(sanlock_init(), 'Lockspace already initialised')
        # Damage the leader record (its space name): sanlock now answers
        # with a checksum error, which says nothing about whether hosts
        # use the lockspace.
        with open(lease, 'r+b') as f:
            f.seek(60)
            byte = f.read(1)[0]
            f.seek(60)
            f.write(bytes([byte ^ 0xff]))
        assert_refused(sanlock_init(), 'Cannot tell whether a lockspace',
                       'errno -229', 'refusing', '--force')
        forced = sanlock_init('--force')
        assert forced.returncode == 0, forced.stderr
        assert_refused(sanlock_init(), 'Lockspace already initialised')
