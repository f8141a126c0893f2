"""Real heartbeat-broker processes on a real metadata file."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from heartbeat.broker import errors
from heartbeat.cmd import broker_status
from heartbeat.drivers.storage import admin
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing import config
from heartbeat.testing.waiting import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.storage]


@pytest.fixture
def workdir():
    return short_dir()


def slots(broker):
    conf = config.make_conf(argv=['--config-file', broker.config_path])
    glob, rows = admin.dump_area(conf)
    return glob, {r.host_id: r for r in rows}


@pytest.fixture
def broker(workdir):
    b = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    init_area(b.config_path)
    b.start()
    yield b
    b.stop()


def test_serves_publishes_and_stops_cleanly(broker):
    with broker.client() as client:
        assert client.ping()['pong'] is True
        assert client.put_state('idle', 3400, {'vm': 'down'})['version'] == 1
        status = wait_for(lambda: (
            lambda s: s if s.writer.written_version == 1 else None)(
                client.get_status()))
    assert status.own.state == 'idle'
    assert status.writer.healthy and not status.writer.stalled
    assert status.domain.monitor == 'never_started'
    assert status.domain.valid is False
    assert status.fencing.fencer == 'none'
    assert status.fencing.safe is False
    assert set(status.submonitors) == {'network', 'cpu_load',
                                       'free_memory', 'storage_domain'}
    _, rows = slots(broker)
    assert rows[1].status == 'valid'
    assert rows[1].detail['state'] == 'idle'
    assert rows[1].detail['data'] == {'vm': 'down', 'maintenance': 'none',
                                      'host_id': 1}
    peers = wait_for(lambda: [p for p in broker.status().peers.members
                              if p.state == 'idle'])
    assert peers[0].is_self and peers[0].member_id == 'host-1'
    assert peers[0].host_id == 1 and peers[0].maintenance == 'none'
    assert broker.stop() == 0
    assert not os.path.exists(broker.socket_path)
    _, rows = slots(broker)
    assert rows[1].status == 'left'


def test_domain_monitor_and_maintenance(broker):
    with broker.client() as client:
        client.start_domain_monitor()
        dom = wait_for(lambda: (lambda d: d if d.valid else None)(
            client.get_status().domain))
        assert dom.validated and dom.delay_s is not None
        client.set_maintenance('global')
        wait_for(lambda: slots(broker)[0]['maintenance'] == 'global')
        wait_for(lambda: client.get_status().maintenance.global_mode
                 == 'global')
        client.set_maintenance('local')
        status = client.get_status()
        assert status.own.local_maintenance is True
        wait_for(lambda: slots(broker)[1][1].detail['data']['maintenance']
                 == 'local')
        client.stop_domain_monitor()
        dom = client.get_status().domain
        assert dom.monitor == 'stopped'
        assert dom.valid is True and dom.validated is False
        # Publishing and peer reads go on while the monitor is stopped.
        before = client.get_status().writer.written_seq
        wait_for(lambda: client.get_status().writer.written_seq
                 > before + 2)
        client.set_maintenance('none')
        wait_for(lambda: slots(broker)[0]['maintenance'] == 'none')
        with pytest.raises(errors.RemoteError) as info:
            client.set_maintenance('sideways')
        assert info.value.kind == 'ConfigError'


class SlotSampler(threading.Thread):
    """Reads the broker's own slot over and over until stopped."""

    def __init__(self, broker):
        super().__init__(daemon=True)
        self.conf = config.make_conf(
            argv=['--config-file', broker.config_path])
        self.host_id = broker.host_id
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            _, rows = admin.dump_area(self.conf)
            row = {r.host_id: r for r in rows}[self.host_id]
            self.samples.append((row.status, row.detail['incarnation'],
                                 row.detail['seq']))
            time.sleep(0.02)

    def finish(self):
        self.done.set()
        self.join(10)
        return self.samples


def test_sighup_reloads_in_place(broker):
    with broker.client() as client:
        before = client.ping()
        client.put_state('idle', 3400)
        status = client.get_status()
    assert status.reload.count == 0
    assert status.submonitors['cpu_load'].interval_s == 0.2
    assert status.options.allowed_uids == []
    wait_for(lambda: slots(broker)[1][1].status == 'valid')
    sampler = SlotSampler(broker)
    sampler.start()
    wait_for(lambda: sampler.samples and sampler.samples[-1][2]
             > sampler.samples[0][2] + 2)
    assert 'Reload applied' not in broker.log_tail(100000)

    broker.sections['broker'].update(storage_stall_after=7.5,
                                     allowed_uids='4242,4343',
                                     max_connections=32)
    broker.sections['submonitors']['interval'] = 0.7
    broker.sections['DEFAULT']['debug'] = True
    broker.write_conf()
    broker.signal(signal.SIGHUP)
    status = wait_for(lambda: (lambda s: s if s.reload.count else None)(
        broker.status()))
    # Keep sampling the slot for a few beats after the reload.
    seq = sampler.samples[-1][2]
    wait_for(lambda: sampler.samples[-1][2] > seq + 5)
    samples = sampler.finish()

    with broker.client() as client:
        after = client.ping()
        client.put_state('running', 3400)
        wait_for(lambda: client.get_status().own.state == 'running')
    # Same worker process, never restarted.
    assert after['pid'] == before['pid'] != broker.pid
    assert after['uptime_s'] > before['uptime_s']
    # The mutable options took effect.
    assert status.options.storage_stall_after == 7.5
    assert status.options.allowed_uids == [4242, 4343]
    assert status.submonitors['cpu_load'].interval_s == 0.7
    assert status.reload.applied == [
        'broker.allowed_uids', 'broker.storage_stall_after',
        'submonitors.interval']
    # ... and the others are reported, not applied.
    assert status.reload.restart_needed == ['broker.max_connections']
    log = broker.log_tail(100000)
    assert 'broker.max_connections' in log and 'restart needed' in log
    # [DEFAULT] debug (oslo.log) applies at once.
    assert 'DEBUG heartbeat.broker.service [-] Reload applied' in log
    # The slot was never marked left: one writer incarnation published on
    # throughout, its seq always growing.
    assert {s[0] for s in samples} == {'valid'}
    assert len({s[1] for s in samples}) == 1
    seqs = [s[2] for s in samples]
    assert seqs == sorted(seqs) and seqs[-1] > seqs[0] + 7
    assert status.writer.healthy


def test_sighup_with_a_bad_file_keeps_the_running_options(broker):
    broker.sections['submonitors']['interval'] = 'often'
    broker.sections['broker']['storage_stall_after'] = 9.0
    broker.write_conf()
    pid = broker.status().host.pid
    broker.signal(signal.SIGHUP)
    status = wait_for(lambda: (lambda s: s if s.reload.failed else None)(
        broker.status()))
    assert status.reload.count == 0
    assert 'often' in status.reload.error
    assert 'SIGHUP again' in status.reload.error
    assert status.options.storage_stall_after == 1.0
    assert status.options.submonitor_interval == 0.2
    assert status.host.pid == pid
    # Fixed, it applies.
    broker.sections['submonitors']['interval'] = 0.3
    broker.write_conf()
    broker.signal(signal.SIGHUP)
    status = wait_for(lambda: (lambda s: s if s.reload.count else None)(
        broker.status()))
    assert status.reload.error is None
    assert status.options.storage_stall_after == 9.0
    assert status.options.submonitor_interval == 0.3
    assert status.host.pid == pid


def test_two_brokers_see_each_other(workdir):
    metadata = os.path.join(workdir, 'metadata')
    one = BrokerProcess(workdir, 1, metadata)
    two = BrokerProcess(workdir, 2, metadata)
    init_area(one.config_path)
    one.start()
    try:
        two.start()
        with one.client() as c1, two.client() as c2:
            c1.put_state('running', 3400)
            c2.put_state('idle', 3000)

            def both_up():
                peers = {p.member_id: p
                         for p in c1.get_status().peers.members}
                return (len(peers) == 2
                        and all(p.status == 'up' for p in peers.values())
                        and peers['host-2'].state == 'idle'
                        and peers)
            peers = wait_for(both_up)
        assert peers['host-2'].score == 3000
        assert not peers['host-2'].is_self and peers['host-1'].is_self
        two.stop()
        wait_for(lambda: {p.member_id: p.status
                          for p in one.status().peers.members}.get('host-2')
                 == 'left')
    finally:
        two.stop()
        one.stop()


def test_status_cli_renders_table_and_json(broker, capsys):
    conf = config.make_conf(argv=['--config-file', broker.config_path])
    assert broker_status.show(conf, as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    assert data['host']['host_id'] == 1
    assert broker_status.show(conf, as_json=False) == 0
    out = capsys.readouterr().out
    assert 'SUBMONITOR' in out and 'fencing:     none (UNSAFE)' in out
    broker.stop()
    assert broker_status.show(conf, as_json=True) == 1


def test_bad_config_fails_fast_without_restart_loop(workdir):
    b = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'),
                      overrides={'submonitors': {'enabled': 'nope'}})
    proc = subprocess.run([sys.executable, '-m', 'heartbeat.cmd.broker',
                           '--config-file', b.config_path],
                          capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert "No submonitor named 'nope'" in proc.stderr
