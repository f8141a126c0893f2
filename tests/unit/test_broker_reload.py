"""In-place reload: checking and applying config files, waking the threads."""

import os
import threading
import time

from oslo_config import cfg
import pytest

from heartbeat.broker.connection import ProbeResult
from heartbeat.broker.domain import DomainMonitor
from heartbeat.broker import service as service_mod
from heartbeat.broker.store import StatusStore
from heartbeat.broker.submonitors.base import Context
from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor
from heartbeat.broker.submonitors import runner
from heartbeat.broker.writer import WriterThread
from heartbeat.conf import broker as broker_conf
from heartbeat.conf import submonitors as sub_conf
from heartbeat import exception
from heartbeat.service import reload
from heartbeat.testing.clock import VirtualClock
from heartbeat.testing import config
from heartbeat.testing.waiting import wait_for
from tests.unit.test_broker_store import GatedDriver
from tests.unit.test_broker_store import NullConnection


# -- the pure part ----------------------------------------------------------

def test_changed_names_compares_values_and_presence():
    before = {'a.x': 1, 'a.y': [1, 2], 'b.z': None}
    after = {'a.x': 1, 'a.y': [1, 3], 'c.w': None}
    assert reload.changed_names(before, after) == ('a.y', 'b.z', 'c.w')
    assert reload.changed_names(before, dict(before)) == ()


def test_option_values_selects_by_mutability_and_skips_unregistered():
    conf = config.make_conf(register=[broker_conf.register_opts])
    areas = [('broker', broker_conf.OPTS), ('nowhere', sub_conf.OPTS)]
    mutable = reload.option_values(conf, areas, mutable=True)
    fixed = reload.option_values(conf, areas, mutable=False)
    assert 'broker.storage_stall_after' in mutable
    assert 'broker.max_connections' in fixed
    assert not set(mutable) & set(fixed)
    assert set(reload.option_values(conf, areas)) == set(mutable) | set(
        fixed)
    assert not any(name.startswith('nowhere.') for name in fixed)


# -- ConfigReloader on real files -------------------------------------------

def register(conf):
    broker_conf.register_opts(conf)
    sub_conf.register_opts(conf)


def areas():
    return [(g.name, opts) for g, opts in (broker_conf.list_opts()
                                           + sub_conf.list_opts())]


def write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


@pytest.fixture
def files(tmp_path):
    main = tmp_path / 'heartbeat.conf'
    write(main, '[broker]\nstorage_stall_after = 2.0\nmax_connections = 8\n')
    extra = tmp_path / 'conf.d'
    extra.mkdir()
    write(extra / 'sub.conf', '[submonitors]\ninterval = 1.0\n')
    conf = cfg.ConfigOpts()
    register(conf)
    conf(['--config-file', str(main), '--config-dir', str(extra)],
         project='heartbeat')
    return conf, main, extra


def test_reload_applies_mutable_options_and_reports_the_others(files):
    conf, main, extra = files
    write(main, '[broker]\nstorage_stall_after = 3.5\nmax_connections = 9\n'
          'socket_path = /elsewhere.sock\n')
    write(extra / 'sub.conf', '[submonitors]\ninterval = 0.25\n')
    result = reload.ConfigReloader(conf, register, areas).reload()
    assert result.applied == ('broker.storage_stall_after',
                              'submonitors.interval')
    assert result.restart_needed == ('broker.max_connections',
                                     'broker.socket_path')
    assert conf.broker.storage_stall_after == 3.5
    assert conf.submonitors.interval == 0.25
    # Not applied until a restart.
    assert conf.broker.max_connections == 8
    # Going back to the running value clears "restart needed".
    write(main, '[broker]\nstorage_stall_after = 3.5\nmax_connections = 8\n')
    result = reload.ConfigReloader(conf, register, areas).reload()
    assert result == reload.ReloadResult(applied=(), restart_needed=())


def test_a_read_during_the_reload_does_not_keep_the_old_value(
        files, monkeypatch):
    # oslo.config empties its cache, parses the files, then installs their
    # values: a thread reading an option in between caches the old one.
    conf, main, _ = files
    parse = conf._reload_config_files
    seen = []

    def parse_while_a_thread_reads():
        namespace = parse()
        seen.append(conf.broker.storage_stall_after)
        return namespace

    monkeypatch.setattr(conf, '_reload_config_files',
                        parse_while_a_thread_reads)
    write(main, '[broker]\nstorage_stall_after = 4.5\nmax_connections = 8\n')
    result = reload.ConfigReloader(conf, register, areas).reload()
    assert seen == [2.0]
    assert conf.broker.storage_stall_after == 4.5
    assert result.applied == ('broker.storage_stall_after',)


@pytest.mark.parametrize('text', [
    '[broker]\nstorage_stall_after = soon\n',        # not a float
    '[broker]\nstorage_stall_after = 0.0001\n',      # below its min
    '[broker\nstorage_stall_after = 3\n',            # not an ini file
    '[submonitors]\nnetwork_method = carrier-pigeon\n',  # not a choice
])
def test_a_bad_file_is_refused_as_a_whole(files, text):
    conf, main, extra = files
    write(extra / 'sub.conf', '[submonitors]\ninterval = 0.5\n')
    write(main, text)
    reloader = reload.ConfigReloader(conf, register, areas)
    with pytest.raises(exception.ConfigError, match='SIGHUP again'):
        reloader.reload()
    # Nothing was applied, not even the good file.
    assert conf.broker.storage_stall_after == 2.0
    assert conf.submonitors.interval == 1.0


def test_a_missing_file_is_refused(files):
    conf, main, _ = files
    os.unlink(main)
    with pytest.raises(exception.ConfigError, match='not reloaded'):
        reload.ConfigReloader(conf, register, areas).reload()
    assert conf.broker.storage_stall_after == 2.0


def test_validate_can_refuse_a_combination(files):
    conf, main, _ = files
    write(main, '[broker]\nstorage_stall_after = 30\n')

    def validate(fresh):
        if fresh.broker.storage_stall_after > 10:
            raise exception.ConfigError('too long')

    with pytest.raises(exception.ConfigError, match=r'too long.*SIGHUP'):
        reload.ConfigReloader(conf, register, areas, validate).reload()
    assert conf.broker.storage_stall_after == 2.0


# -- threads re-read their intervals when woken -----------------------------

class Counting(Submonitor):
    name = 'counting'

    def __init__(self, conf, context):
        super().__init__(conf, context)
        self.calls = 0

    def measure(self):
        self.calls += 1
        return Reading(self.calls, True)


def test_runner_applies_a_shorter_interval_at_once():
    clock = VirtualClock()
    conf = config.make_conf(register=[sub_conf.register_opts],
                            submonitors={'interval': 3600.0})
    mon = Counting(conf, Context())
    run = runner.SubmonitorRunner([mon], clock=clock)
    run.start()
    try:
        clock.wait_for_sleepers()
        assert mon.calls == 1 and clock.next_wakeup() == 3600.0
        clock.advance(10.0)
        assert mon.calls == 1   # asleep for an hour
        conf.set_override('interval', 5.0, 'submonitors')
        run.reschedule()
        # Due 5 s after the last measurement, that is now.
        wait_for(lambda: mon.calls == 2)
        clock.wait_for_sleepers()
        assert clock.next_wakeup() == 15.0
        clock.advance(5.0)
        clock.wait_for_sleepers()
        assert mon.calls == 3
        assert run.view()['counting'].interval_s == 5.0
    finally:
        run.stop()
    assert not run._threads


def test_domain_monitor_applies_a_shorter_interval_at_once():
    clock = VirtualClock()
    calls = []
    interval = [3600.0]

    def probe():
        calls.append(clock.now())
        return ProbeResult(True, 0.0)

    dom = DomainMonitor(probe, interval=lambda: interval[0],
                        timeout=lambda: 1.0, clock=clock)
    dom.start()
    try:
        clock.wait_for_sleepers()
        assert clock.next_wakeup() == 3600.0
        clock.advance(1.0)
        interval[0] = 2.0
        dom.reschedule()
        wait_for(lambda: clock.next_wakeup() == 2.0)
        clock.advance(1.0)
        clock.wait_for_sleepers()
        clock.advance(2.0)
        clock.wait_for_sleepers()
        assert calls == [0.0, 2.0, 4.0]
    finally:
        dom.stop()
    clock.advance(100.0)
    assert calls == [0.0, 2.0, 4.0]


def test_writer_applies_a_shorter_report_interval_at_once():
    clock = VirtualClock()
    store = StatusStore('hosts', 'me', down_time=5.0,
                        stall_after=lambda: 10.0, clock=clock)
    driver = GatedDriver()
    driver.gate.set()
    interval = [3600.0]
    writer = WriterThread(store, driver, NullConnection(),
                          report_interval=lambda: interval[0],
                          peer_interval=lambda: 3600.0,
                          retry_interval=lambda: 0.05, clock=clock)
    writer.start()
    try:
        clock.wait_for_sleepers()
        assert len(driver.published) == 1
        assert clock.next_wakeup() == 3600.0
        interval[0] = 2.0
        writer.reschedule()
        wait_for(lambda: clock.next_wakeup() == 2.0)
        for beats in (2, 3):
            clock.advance(2.0)
            clock.wait_for_sleepers()
            assert len(driver.published) == beats
    finally:
        assert writer.stop(timeout=5)
    assert driver.published[-1] == 'left'


def test_reschedule_wakes_nothing_when_nothing_changed():
    clock = VirtualClock()
    conf = config.make_conf(register=[sub_conf.register_opts],
                            submonitors={'interval': 3600.0})
    mon = Counting(conf, Context())
    run = runner.SubmonitorRunner([mon], clock=clock)
    run.start()
    try:
        clock.wait_for_sleepers()
        for _ in range(3):
            # Woken, the runner goes back to sleep without measuring.
            begun = clock.waits_begun
            run.reschedule()
            wait_for(lambda begun=begun: clock.waits_begun > begun
                     and clock.sleepers() == 1, interval=0.001)
            assert mon.calls == 1 and clock.next_wakeup() == 3600.0
    finally:
        stopper = threading.Thread(target=run.stop)
        stopper.start()
        stopper.join(5)
        assert not stopper.is_alive()


# -- SIGHUPs are never dropped ----------------------------------------------

class RecordingService(service_mod.BrokerService):
    """A BrokerService whose reload waits for a gate and counts."""

    def __init__(self):
        super().__init__(cfg.ConfigOpts())
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def reload(self):
        self.calls += 1
        self.entered.set()
        self.gate.wait(10)
        if self.calls == 1:
            raise RuntimeError('a bug in the first reload')


def test_requests_during_a_reload_coalesce_into_one_more():
    svc = RecordingService()
    svc.request_reload()
    assert svc.entered.wait(5)
    for _ in range(5):
        svc.request_reload()     # returns at once
    assert svc.calls == 1
    svc.gate.set()
    # The first reload failed; the requests made meanwhile still run once.
    wait_for(lambda: svc.calls == 2 and svc._reloading is None)
    time.sleep(0.05)
    assert svc.calls == 2
    svc.request_reload()
    wait_for(lambda: svc.calls == 3)
