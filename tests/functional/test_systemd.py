"""systemd: the units pass systemd-analyze verify, and the daemons speak
the notification protocol for real (READY only once they serve, the
watchdog fed while their loops are alive)."""

import os
import shutil
import subprocess
import sys

import pytest

from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.members import StorageCluster
from heartbeat.testing.notify import NotifySocket

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
UNITS = os.path.join(ROOT, 'etc', 'systemd')


def _installed(unit_dir, tmp_path):
    """The units with ExecStart pointing at this environment's scripts."""
    scripts = os.path.dirname(sys.executable)
    out = []
    for name in sorted(os.listdir(unit_dir)):
        if not name.endswith('.service'):
            continue
        with open(os.path.join(unit_dir, name), encoding='utf-8') as f:
            text = f.read().replace('/usr/bin/heartbeat-',
                                    scripts + '/heartbeat-')
        # A template is verified as one of its instances.
        target = tmp_path / name.replace('@.', '@compute.')
        target.write_text(text)
        out.append(str(target))
    return out


def test_units_pass_systemd_analyze_verify(tmp_path):
    assert shutil.which('systemd-analyze'), 'systemd-analyze is missing'
    units = _installed(UNITS, tmp_path)
    assert len(units) == 3, units
    proc = subprocess.run(['systemd-analyze', 'verify', '--man=no', *units],
                          capture_output=True, text=True, timeout=120,
                          check=False)
    # verify also exits 0 on lines it ignores: none may be printed.
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout + proc.stderr == '', proc.stdout + proc.stderr


def test_verify_catches_a_bad_unit(tmp_path):
    units = _installed(UNITS, tmp_path)
    broken = tmp_path / 'broken.service'
    with open(units[0], encoding='utf-8') as f:
        broken.write_text(f.read().replace('Type=notify', 'Type=notfy'))
    proc = subprocess.run(['systemd-analyze', 'verify', '--man=no',
                           str(broken)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert 'notfy' in proc.stdout + proc.stderr


def test_every_unit_is_type_notify_with_a_watchdog():
    for name in os.listdir(UNITS):
        with open(os.path.join(UNITS, name), encoding='utf-8') as f:
            text = f.read()
        assert 'Type=notify' in text and 'WatchdogSec=' in text, name


@pytest.mark.broker
@pytest.mark.storage
def test_broker_is_ready_once_it_serves_and_feeds_the_watchdog():
    workdir = short_dir('hbsd')
    with NotifySocket(workdir) as sock:
        broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'),
                               env=sock.environ(watchdog=0.6))
        init_area(broker.config_path)
        broker.start()
        try:
            ready = sock.wait('READY=1', 30)
            # Pinged every half period from then on.
            sock.wait('WATCHDOG=1', 10)
            for _ in range(3):
                n = len(sock.lines('WATCHDOG=1'))
                sock.wait('WATCHDOG=1', 5)
                assert len(sock.lines('WATCHDOG=1')) >= n
            watchdogs = [t for t, _ in sock.lines('WATCHDOG=1')]
            assert watchdogs[0] >= ready
            assert broker.status().writer is not None
        finally:
            assert broker.stop() == 0
        sock.wait('STOPPING=1', 10)


@pytest.mark.storage
def test_member_is_ready_once_joined(tmp_path):
    with StorageCluster(str(tmp_path), report_interval=0.1,
                        service_down_time=1.0, max_hosts=4) as cluster, \
            NotifySocket(str(tmp_path)) as sock:
        env = sock.environ(watchdog=0.4)
        proc = subprocess.Popen(
            [sys.executable, '-m', 'heartbeat.cmd.member', '--config-file',
             cluster.config_path, '--host-id', '1', '--group', 'g',
             '--member-id', 'm1'], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        try:
            assert 'joined' in proc.stdout.readline()
            sock.wait('READY=1', 10)
            sock.wait('WATCHDOG=1', 10)
            assert cluster.read_slot(1) is not None
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0
        sock.wait('STOPPING=1', 10)
