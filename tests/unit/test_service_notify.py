"""systemd notifications and the watchdog feeder, on a real socket."""

import tempfile

from heartbeat.service import notify
from heartbeat.testing.notify import NotifySocket
from heartbeat.testing.waiting import wait_for


def _env(monkeypatch, sock, usec=None):
    monkeypatch.setenv('NOTIFY_SOCKET', sock.path)
    if usec is None:
        monkeypatch.delenv('WATCHDOG_USEC', raising=False)
    else:
        monkeypatch.setenv('WATCHDOG_USEC', str(usec))


def test_nothing_happens_outside_systemd(monkeypatch):
    monkeypatch.delenv('NOTIFY_SOCKET', raising=False)
    monkeypatch.setenv('WATCHDOG_USEC', '1000000')
    assert notify.notify('READY=1') is False
    assert notify.watchdog_period() is None


def test_messages_reach_the_socket(monkeypatch):
    with tempfile.TemporaryDirectory() as d, NotifySocket(d) as sock:
        _env(monkeypatch, sock, 2_000_000)
        assert notify.notify('READY=1', 'STATUS=serving')
        sock.wait('READY=1', 5)
        sock.wait('STATUS=serving', 5)
        assert notify.watchdog_period() == 2.0


def test_a_bad_period_is_ignored(monkeypatch):
    with tempfile.TemporaryDirectory() as d, NotifySocket(d) as sock:
        _env(monkeypatch, sock, 'soon')
        assert notify.watchdog_period() is None


def test_watchdog_is_fed_only_while_alive(monkeypatch):
    with tempfile.TemporaryDirectory() as d, NotifySocket(d) as sock:
        _env(monkeypatch, sock)
        reason = [None]
        dog = notify.Watchdog(lambda: reason[0], period=1.0)
        assert dog.tick() and dog.tick()
        reason[0] = 'the loop made no decision for 61s'
        assert not dog.tick() and not dog.tick()
        reason[0] = None
        assert dog.tick()
        assert dog.fed == 3 and dog.withheld == 2
        wait_for(lambda: len(sock.lines('WATCHDOG=1')) == 3, 5)
        sock.wait('STATUS=serving', 5)
        lines = [m for _, m in sock.lines()]
        # The hang is said once, not on every tick.
        assert lines.count(
            'STATUS=not alive: the loop made no decision for 61s') == 1


def test_a_failing_check_counts_as_not_alive(monkeypatch):
    with tempfile.TemporaryDirectory() as d, NotifySocket(d) as sock:
        _env(monkeypatch, sock)

        def broken():
            raise RuntimeError('boom')

        dog = notify.Watchdog(broken, period=1.0)
        assert not dog.tick()
        sock.wait('STATUS=not alive: the liveness check failed: boom', 5)


def test_watchdog_thread_feeds_every_half_period(monkeypatch):
    with tempfile.TemporaryDirectory() as d, NotifySocket(d) as sock:
        _env(monkeypatch, sock, 200_000)
        dog = notify.Watchdog(lambda: None)
        dog.start()
        try:
            first = sock.wait('WATCHDOG=1', 5)
        finally:
            dog.stop()
        assert dog.period == 0.2
        assert first > 0 and dog.fed >= 1


class FakeLoop:
    last = None


def test_agent_is_alive_while_its_loop_decides(monkeypatch):
    from heartbeat.agent import service as agent_service
    from heartbeat.testing import config

    conf = config.make_conf(register=[agent_service.register_opts])
    svc = agent_service.AgentService(conf)
    assert svc.alive() == 'the agent loop is not running'
    now = [1000.0]
    monkeypatch.setattr(agent_service.time, 'monotonic', lambda: now[0])
    limit = max(60.0, agent_service.LOOP_STALL_TURNS
                * conf.agent.loop_interval)
    svc.loop = FakeLoop()
    svc.loop.last = object()
    assert svc.alive() is None
    now[0] += limit - 1
    assert svc.alive() is None            # within the limit: alive
    svc.loop.last = object()              # a new decision
    assert svc.alive() is None
    now[0] += limit - 1
    assert svc.alive() is None
    now[0] += 3.0
    assert 'made no decision for %.0fs' % (limit + 2) in svc.alive()
