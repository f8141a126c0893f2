"""Domain monitor and submonitors."""

import http.server
import socket
import threading

import pytest

from heartbeat.broker.connection import ProbeResult
from heartbeat.broker.domain import DomainMonitor
from heartbeat.broker.submonitors.base import Context
from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor
from heartbeat.broker.submonitors import cpu_load
from heartbeat.broker.submonitors import free_memory
from heartbeat.broker.submonitors.network import NetworkMonitor
from heartbeat.broker.submonitors import runner
from heartbeat.broker.submonitors.storage_domain import StorageDomainMonitor
from heartbeat.broker.submonitors.workload_health import (
    WorkloadHealthMonitor)
from heartbeat.conf import submonitors as sub_conf
from heartbeat import exception
from heartbeat.testing.clock import VirtualClock
from heartbeat.testing import config
from heartbeat.testing.waiting import wait_for


def make_conf(**overrides):
    return config.make_conf(register=[sub_conf.register_opts],
                            submonitors={'timeout': 1.0, **overrides})


class GatedProbe:
    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def __call__(self):
        self.calls += 1
        self.gate.wait(30)
        return ProbeResult(True, 0.001)


def test_domain_never_started_is_invalid_and_stopped_is_valid_unvalidated():
    clock = VirtualClock()
    probe = GatedProbe()
    dom = DomainMonitor(probe, interval=lambda: 5.0, timeout=lambda: 1.0,
                        clock=clock)
    view = dom.view()
    assert view.monitor == 'never_started' and view.valid is False
    assert probe.calls == 0
    dom.start()
    clock.wait_for_sleepers()
    assert probe.calls == 1 and clock.next_wakeup() == 5.0
    view = dom.view()
    assert view.valid and view.validated and view.delay_s == 0.001
    clock.advance(4.9)
    assert probe.calls == 1
    clock.advance(0.1)
    clock.wait_for_sleepers()
    assert probe.calls == 2 and dom.view().last_probe_age_s == 0.0
    thread = dom._thread
    dom.stop()
    thread.join(5)
    view = dom.view()
    assert (view.monitor, view.valid, view.validated) == (
        'stopped', True, False)
    clock.advance(60.0)
    assert probe.calls == 2 and not thread.is_alive()


def test_domain_stuck_probe_turns_invalid_without_waiting():
    clock = VirtualClock()
    probe = GatedProbe()
    dom = DomainMonitor(probe, interval=lambda: 5.0, timeout=lambda: 1.0,
                        clock=clock)
    dom.start()
    clock.wait_for_sleepers()
    assert dom.view().valid
    probe.gate.clear()
    clock.advance(5.0)
    wait_for(lambda: probe.calls == 2)
    # Stuck, but not for longer than the timeout yet.
    assert dom.view().valid
    clock.advance(1.5)
    view = dom.view()
    assert not view.valid and 'stalled' in view.error
    assert '1.5s' in view.error
    probe.gate.set()
    clock.wait_for_sleepers()
    assert dom.view().valid
    dom.stop()


def test_domain_failed_probe_is_invalid():
    clock = VirtualClock()
    dom = DomainMonitor(lambda: ProbeResult(False, 0.5, 'EIO'),
                        interval=lambda: 5.0, timeout=lambda: 1.0,
                        clock=clock)
    dom.start()
    clock.wait_for_sleepers()
    assert dom.view().error == 'EIO' and dom.view().valid is False
    dom.stop()


def test_pure_parsers():
    assert cpu_load.load_per_cpu('3.00 2.00 1.00 1/100 42\n', 2) == 1.5
    text = 'MemTotal: 2048000 kB\nMemFree: 1 kB\nMemAvailable: 1024000 kB\n'
    assert free_memory.meminfo_mib(text) == (1000, 2000)
    with pytest.raises(exception.HeartbeatError):
        free_memory.meminfo_mib('MemTotal: 1 kB\n')


def test_cpu_and_memory_read_this_host():
    conf = make_conf()
    cpu = cpu_load.CpuLoadMonitor(conf, Context()).measure()
    assert cpu.value >= 0
    mem = free_memory.FreeMemoryMonitor(conf, Context()).measure()
    assert mem.value > 0


def test_network_tcp_fraction():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(('127.0.0.1', 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    try:
        conf = make_conf(network_method='tcp', network_probes=2,
                         network_targets=['127.0.0.1:%d' % port,
                                          '127.0.0.1:%d' % dead_port])
        reading = NetworkMonitor(conf, Context()).measure()
        assert reading.value == 0.5 and not reading.ok
        assert '127.0.0.1:%d' % dead_port in reading.detail
        conf.set_override('network_targets', ['127.0.0.1:%d' % port],
                          'submonitors')
        assert NetworkMonitor(conf, Context()).measure().value == 1.0
        conf.set_override('network_method', 'none', 'submonitors')
        assert NetworkMonitor(conf, Context()).measure().ok
    finally:
        listener.close()


def test_workload_health_command_and_url():
    conf = make_conf(workload_health_command='true')
    mon = WorkloadHealthMonitor(conf, Context())
    assert mon.measure().ok
    conf.set_override('workload_health_command', 'false', 'submonitors')
    assert not mon.measure().ok

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == '/ok' else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = 'http://127.0.0.1:%d' % httpd.server_port
        conf.clear_override('workload_health_command', 'submonitors')
        conf.set_override('workload_health_url', base + '/ok', 'submonitors')
        assert mon.measure().ok
        conf.set_override('workload_health_url', base + '/bad',
                          'submonitors')
        reading = mon.measure()
        assert not reading.ok and reading.detail == 'HTTP 503'
    finally:
        httpd.shutdown()


def test_workload_health_from_the_agent_without_command_or_url():
    conf = make_conf()
    posted = [None]
    mon = WorkloadHealthMonitor(conf, Context(agent_health=lambda: posted[0]))
    with pytest.raises(exception.ConfigError, match='health_command'):
        mon.measure()
    posted[0] = {'healthy': True, 'detail': 'HTTP 200', 'age_s': 1.0}
    reading = mon.measure()
    assert reading.ok and 'HTTP 200' in reading.detail
    posted[0] = {'healthy': False, 'detail': 'HTTP 503'}
    assert not mon.measure().ok
    posted[0] = {'healthy': None, 'detail': ''}
    reading = mon.measure()
    assert reading.value is None and not reading.ok
    # A command of the broker's own wins over the agent's result.
    conf.set_override('workload_health_command', 'true', 'submonitors')
    assert mon.measure().ok and 'agent' not in mon.measure().detail


def test_storage_domain_reflects_the_domain_monitor():
    conf = make_conf()
    clock = VirtualClock()
    dom = DomainMonitor(lambda: ProbeResult(True, 0.002),
                        interval=lambda: 5.0, timeout=lambda: 1.0,
                        clock=clock)
    mon = StorageDomainMonitor(conf, Context(domain=dom))
    assert not mon.measure().ok
    dom.start()
    clock.wait_for_sleepers()
    assert mon.measure().ok
    dom.stop()


class Stuck(Submonitor):
    name = 'stuck'
    gate = threading.Event()

    def measure(self):
        self.gate.wait(30)
        return Reading(1, True)


class Broken(Submonitor):
    name = 'broken'

    def measure(self):
        raise RuntimeError('plugin bug')


def test_runner_answers_while_a_submonitor_is_stuck():
    clock = VirtualClock()
    conf = make_conf(interval=5.0, timeout=1.0)
    run = runner.SubmonitorRunner([Stuck(conf, Context()),
                                   Broken(conf, Context())], clock=clock)
    run.start()
    try:
        # Broken measured and sleeps; Stuck is still in its measurement.
        clock.wait_for_sleepers()
        assert 'plugin bug' in run.view()['broken'].error
        assert run.view()['stuck'].error is None
        clock.advance(2.0)
        assert run.view()['stuck'].error is None
        clock.advance(0.5)
        view = run.view()
        assert view['stuck'].ok is False
        assert view['stuck'].error == 'measurement running for 2.5s'
        assert view['broken'].age_s == 2.5
        clock.advance(2.5)
        clock.wait_for_sleepers()
        assert run.view()['broken'].age_s == 0.0
    finally:
        Stuck.gate.set()
        run.stop()


def test_unknown_submonitor_is_a_config_error():
    with pytest.raises(exception.ConfigError, match='nope'):
        runner.load(make_conf(), ['nope'], Context())
    assert [m.name for m in runner.load(make_conf(), ['cpu_load'],
                                        Context())] == ['cpu_load']
