"""Domain monitor and submonitors."""

import http.server
import socket
import threading
import time

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
    probe = GatedProbe()
    dom = DomainMonitor(probe, interval=lambda: 0.05, timeout=lambda: 0.2)
    view = dom.view()
    assert view.monitor == 'never_started' and view.valid is False
    assert probe.calls == 0
    dom.start()
    wait_for(lambda: dom.view().valid)
    assert dom.view().validated and dom.view().delay_s == 0.001
    dom.stop()
    calls = probe.calls
    view = dom.view()
    assert (view.monitor, view.valid, view.validated) == (
        'stopped', True, False)
    time.sleep(0.2)
    assert probe.calls <= calls + 1


def test_domain_stuck_probe_turns_invalid_without_waiting():
    probe = GatedProbe()
    dom = DomainMonitor(probe, interval=lambda: 0.05, timeout=lambda: 0.2)
    dom.start()
    wait_for(lambda: dom.view().valid)
    probe.gate.clear()
    wait_for(lambda: not dom.view().valid)
    assert 'stalled' in dom.view().error
    probe.gate.set()
    wait_for(lambda: dom.view().valid)
    dom.stop()


def test_domain_failed_probe_is_invalid():
    dom = DomainMonitor(lambda: ProbeResult(False, 0.5, 'EIO'),
                        interval=lambda: 0.05, timeout=lambda: 1.0)
    dom.start()
    wait_for(lambda: dom.view().error == 'EIO')
    assert dom.view().valid is False
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
    dom = DomainMonitor(lambda: ProbeResult(True, 0.002),
                        interval=lambda: 0.05, timeout=lambda: 1.0)
    mon = StorageDomainMonitor(conf, Context(domain=dom))
    assert not mon.measure().ok
    dom.start()
    wait_for(lambda: mon.measure().ok)
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
    conf = make_conf(interval=0.05, timeout=0.05)
    run = runner.SubmonitorRunner([Stuck(conf, Context()),
                                   Broken(conf, Context())])
    run.start()
    try:
        start = time.monotonic()
        wait_for(lambda: run.view()['broken'].error)
        assert 'plugin bug' in run.view()['broken'].error
        wait_for(lambda: run.view()['stuck'].error)
        assert 'running' in run.view()['stuck'].error
        assert time.monotonic() - start < 5
    finally:
        Stuck.gate.set()
        run.stop()


def test_unknown_submonitor_is_a_config_error():
    with pytest.raises(exception.ConfigError, match='nope'):
        runner.load(make_conf(), ['nope'], Context())
    assert [m.name for m in runner.load(make_conf(), ['cpu_load'],
                                        Context())] == ['cpu_load']
