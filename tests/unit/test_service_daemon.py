"""ReloadableService on real config files, and the launcher in a real
process tree (cotyledon master and worker)."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from oslo_config import cfg
import pytest

from heartbeat import exception
from heartbeat.service import daemon
from heartbeat.service import launcher
from heartbeat.service.reload import ReloadResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

OPTS = [
    cfg.IntOpt('size', default=1, min=1, mutable=True,
               help='A mutable option.'),
    cfg.StrOpt('path', default='/srv', help='An option fixed at start.'),
]


def register(conf):
    conf.register_opts(OPTS, 'demo')


def areas():
    return [('demo', OPTS)]


def validate(conf):
    if conf.demo.path.startswith('/forbidden'):
        raise exception.ConfigError('[demo] path may not be under '
                                    '/forbidden.')


class Recorder(daemon.ReloadableService):
    """Records its lifecycle; a reload waits for ``gate`` when it is clear."""

    def __init__(self, conf):
        super().__init__(conf, register, areas, 'demo-daemon',
                         validate=validate)
        self.events = []
        self.reloads = []
        self.entered = queue.Queue()
        self.gate = threading.Event()
        self.gate.set()

    def _start(self):
        self.events.append('start')

    def _stop(self):
        self.events.append('stop')

    def _reloaded(self, result, error):
        super()._reloaded(result, error)
        self.reloads.append((result, error, self.conf.demo.size))
        self.entered.put(len(self.reloads))
        assert self.gate.wait(10)
        self.events.append('reloaded')

    def _reset(self):
        self.events.append('reset')


def write(path, size, path_opt='/srv'):
    with open(path, 'w', encoding='utf-8') as f:
        f.write('[demo]\nsize = %s\npath = %s\n' % (size, path_opt))


@pytest.fixture
def svc(tmp_path):
    path = tmp_path / 'demo.conf'
    write(path, 2)
    conf = cfg.ConfigOpts()
    register(conf)
    conf(['--config-file', str(path)], project='demo')
    service = Recorder(conf)
    service.path = path
    service.start()
    yield service
    service.gate.set()
    service.stop()


def returns_at_once(func):
    worker = threading.Thread(target=func, daemon=True)
    worker.start()
    worker.join(5)
    return not worker.is_alive()


def settle(service):
    """Wait for the reload thread (if any) to have nothing left to do."""
    thread = service._reloading
    if thread is not None:
        thread.join(10)
        assert not thread.is_alive()


APPLIED = ReloadResult(applied=('demo.size',), restart_needed=())


def test_requests_during_a_reload_make_exactly_one_more(svc):
    svc.gate.clear()
    write(svc.path, 3)
    svc.request_reload()
    assert svc.entered.get(timeout=5) == 1
    # The first reload holds the lifecycle lock; new requests return.
    write(svc.path, 4)
    assert returns_at_once(svc.request_reload)
    assert returns_at_once(svc.request_reload)
    svc.gate.set()
    settle(svc)
    # One more reload, and it saw the newest file.
    assert svc.reloads == [(APPLIED, None, 3), (APPLIED, None, 4)]
    assert svc.entered.get_nowait() == 2
    # Once idle, a request starts a new reload thread.
    write(svc.path, 5)
    svc.request_reload()
    settle(svc)
    assert svc.entered.get(timeout=5) == 3
    assert svc.reloads[-1] == (APPLIED, None, 5)


@pytest.mark.parametrize('size, path_opt, why', [
    ('0', '/srv', 'greater than or equal to 1'),              # below its min
    ('many', '/srv', 'many'),                # not an integer
    ('7', '/forbidden/x', '/forbidden'),     # refused by validate
])
def test_a_refused_reload_keeps_the_options(svc, size, path_opt, why):
    write(svc.path, size, path_opt)
    svc.request_reload()
    settle(svc)
    assert len(svc.reloads) == 1
    result, error, seen = svc.reloads[0]
    assert result is None
    assert why in error and 'SIGHUP again' in error
    assert seen == 2 and svc.conf.demo.size == 2
    # Fixed, the next reload applies.
    write(svc.path, 6)
    svc.request_reload()
    settle(svc)
    assert svc.reloads[-1] == (APPLIED, None, 6)


def test_a_fixed_option_is_reported_not_applied(svc):
    write(svc.path, 2, '/elsewhere')
    svc.request_reload()
    settle(svc)
    assert svc.reloads == [
        (ReloadResult((), ('demo.path',)), None, 2)]
    assert svc.conf.demo.path == '/srv'


def test_stop_during_a_reload_waits_for_it_and_ends_reloads(svc):
    svc.gate.clear()
    write(svc.path, 3)
    svc.request_reload()
    assert svc.entered.get(timeout=5) == 1
    # Asked for while the first runs: would follow it, but stop comes first.
    svc.request_reload()
    stopper = threading.Thread(target=svc.stop, daemon=True)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()          # waits for the running reload
    svc.gate.set()
    stopper.join(5)
    assert not stopper.is_alive()
    settle(svc)
    assert svc.events == ['start', 'reloaded', 'stop']
    assert svc.reloads == [(APPLIED, None, 3)]
    assert returns_at_once(svc.wait)
    # Stopped: later requests do nothing.
    svc.request_reload()
    settle(svc)
    assert len(svc.reloads) == 1


def test_wait_blocks_until_stop(svc):
    waiter = threading.Thread(target=svc.wait, daemon=True)
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()
    svc.stop()
    waiter.join(5)
    assert not waiter.is_alive()


def test_a_failing_stop_still_ends_wait(tmp_path):
    class Failing(Recorder):
        def _stop(self):
            raise RuntimeError('cannot stop')

    conf = cfg.ConfigOpts()
    register(conf)
    conf([], project='demo')
    service = Failing(conf)
    service.start()
    with pytest.raises(RuntimeError):
        service.stop()
    assert returns_at_once(service.wait)


def test_reset_calls_the_hook(svc):
    svc.reset()
    assert svc.events == ['start', 'reset']


# -- the launcher, in real processes -----------------------------------------

SCRIPT = r'''
import logging
import sys

from heartbeat import cmd

cmd.init_backend()

from oslo_config import cfg

from heartbeat import exception
from heartbeat.service import daemon
from heartbeat.service import launcher

marker, mode = sys.argv[1], sys.argv[2]


def note(word):
    with open(marker, 'a', encoding='utf-8') as f:
        f.write(word + '\n')


def starts():
    with open(marker, encoding='utf-8') as f:
        return f.read().split().count('start')


class Demo(daemon.ReloadableService):
    def _start(self):
        note('start')
        if mode == 'refuse':
            raise exception.ConfigError('[demo] size must be at least 1.')
        if mode == 'crash-once' and starts() == 1:
            raise RuntimeError('a bug at start')
        note('ready')

    def _stop(self):
        note('stop')


# cotyledon's own lines (such as "Forking too fast") must be visible.
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
conf = cfg.ConfigOpts()
conf([], project='demo')
sys.exit(launcher.launch(
    conf, Demo(conf, lambda c: None, lambda: [], 'demo-daemon')))
'''


def spawn(tmp_path, mode):
    marker = tmp_path / 'marker'
    marker.write_text('')
    proc = subprocess.Popen(
        [sys.executable, '-c', SCRIPT, str(marker), mode], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, marker


def finish(proc, timeout):
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            # The master made itself a session (and group) leader.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_refused_configuration_ends_the_daemon(tmp_path):
    started = time.monotonic()
    proc, marker = spawn(tmp_path, 'refuse')
    _, err = finish(proc, 30)
    assert proc.returncode == launcher.EXIT_REFUSED == 2
    assert time.monotonic() - started < 10
    assert marker.read_text().split() == ['start']     # never respawned
    assert 'Forking too fast' not in err
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines()
             if 'size must be at least 1' in line]
    assert len(lines) == 1
    assert 'demo-daemon cannot start' in lines[0]


def test_a_worker_that_crashes_otherwise_is_respawned(tmp_path):
    proc, marker = spawn(tmp_path, 'crash-once')
    try:
        deadline = time.monotonic() + 20
        while 'ready' not in marker.read_text().split():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc, 20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    assert marker.read_text().split() == ['start', 'start', 'ready', 'stop']
    assert 'a bug at start' in err
