"""HealthChecker against real commands and a real HTTP server."""

import http.server
import socket
import sys
import threading
import time

import pytest

from heartbeat.testing.clock import VirtualClock
from heartbeat.testing.waiting import wait_for
from heartbeat.workload.errors import WorkloadError
from heartbeat.workload.health import HealthChecker
from heartbeat.workload import procs


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = {'/ok': 200, '/created': 201}.get(self.path, 500)
        self.send_response(code)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass  # keep the test output clean


@pytest.fixture(scope='module')
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def check(**kwargs):
    return HealthChecker(clock=Clock(), **kwargs).run_once()


def test_a_command_that_exits_0_is_healthy():
    result = check(command='true')
    assert result.healthy is True and result.age_s == 0.0


def test_a_failing_command_is_unhealthy_with_its_status_and_stderr():
    result = check(command='sh -c "echo broken >&2; echo out; exit 3"')
    assert result.healthy is False
    assert result.detail == 'health command sh exited with status 3: broken'


def test_a_missing_command_is_an_unhealthy_result():
    result = check(command='no-such-health-command --flag')
    assert result.healthy is False
    assert 'no-such-health-command' in result.detail
    assert 'No such file' in result.detail


def test_a_command_that_overruns_is_killed_with_its_group(tmp_path):
    child_file = tmp_path / 'child'
    start = time.monotonic()
    result = check(command="sh -c 'sleep 30 & echo $! > %s; wait'"
                   % child_file, timeout=0.5)
    assert time.monotonic() - start < 3
    assert result.healthy is False and 'timed out after 0.5s' in result.detail
    wait_for(lambda: not procs.pid_alive(int(child_file.read_text())))


def test_the_command_runs_without_a_shell_in_its_own_session():
    code = 'import os, sys; sys.exit(os.getsid(0) != os.getpid())'
    result = check(command='%s -c "%s"' % (sys.executable, code))
    assert result.healthy is True, result.detail
    # A shell would run false and fail; echo prints the rest instead.
    assert check(command='echo ok; false').healthy is True


@pytest.mark.parametrize(('path', 'healthy', 'detail'), [
    ('/ok', True, 'HTTP 200'), ('/created', True, 'HTTP 201'),
    ('/broken', False, 'HTTP 500')])
def test_a_url_is_healthy_on_2xx(server, path, healthy, detail):
    result = check(url=server + path)
    assert result.healthy is healthy and detail in result.detail


def test_a_closed_port_is_unhealthy():
    result = check(url='http://127.0.0.1:%d/' % closed_port(), timeout=2)
    assert result.healthy is False
    assert 'refused' in result.detail.lower()


def test_results_age_on_the_injected_clock():
    clock = Clock()
    checker = HealthChecker(command='true', clock=clock)
    assert checker.latest().healthy is None
    assert checker.latest().age_s is None
    checker.run_once()
    clock.now += 7.5
    assert checker.latest().healthy is True
    assert checker.latest().age_s == 7.5


def test_reset_forgets_the_results():
    checker = HealthChecker(command='true')
    checker.run_once()
    checker.reset()
    result = checker.latest()
    assert result.healthy is None and result.age_s is None


def test_no_check_configured_is_no_result():
    checker = HealthChecker()
    checker.start()
    result = checker.latest()
    assert result.healthy is None and result.age_s is None
    assert 'no health check' in result.detail
    assert checker.stop(1)


@pytest.mark.parametrize(('kwargs', 'match'), [
    ({'command': 'true', 'url': 'http://x/'}, 'not both'),
    ({'url': 'ftp://x/'}, 'not an http'),
    ({'command': 'sh -c "unclosed'}, 'Cannot parse'),
    ({'command': 'true', 'interval': 0}, 'positive')])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(WorkloadError, match=match):
        HealthChecker(**kwargs)


def test_the_thread_checks_in_the_background_and_stops(tmp_path):
    count = tmp_path / 'count'
    clock = VirtualClock()
    checker = HealthChecker(command='sh -c "echo x >> %s"' % count,
                            interval=10.0, clock=clock)

    def checks():
        return len(count.read_text().split())

    checker.start()
    try:
        clock.wait_for_sleepers()
        assert checks() == 1 and clock.next_wakeup() == 10.0
        clock.advance(9.5)
        assert checks() == 1
        clock.advance(0.5)
        clock.wait_for_sleepers()
        assert checks() == 2
        clock.advance(10.0)
        clock.wait_for_sleepers()
        assert checks() == 3
        assert checker.latest().healthy is True
    finally:
        assert checker.stop(5)
    clock.advance(100.0)
    assert checks() == 3 and clock.sleepers() == 0


def test_stop_kills_a_check_in_progress_without_recording_it(tmp_path):
    flag = tmp_path / 'healthy'
    flag.touch()
    clock = VirtualClock()
    checker = HealthChecker(
        command='sh -c "test -e %s || sleep 30"' % flag, timeout=30,
        interval=10.0, clock=clock)
    checker.start()
    clock.wait_for_sleepers()
    assert checker.latest().healthy
    flag.unlink()
    clock.advance(10.0)
    wait_for(lambda: checker._proc is not None)
    start = time.monotonic()
    assert checker.stop(5)
    assert time.monotonic() - start < 3
    assert checker.latest().healthy is True


def test_options_are_read_before_each_check():
    timeout = [5.0]
    checker = HealthChecker(command='sleep 1', timeout=lambda: timeout[0])
    timeout[0] = 0.2
    assert 'timed out after 0.2s' in checker.run_once().detail


class Flaky(HealthChecker):
    """A checker whose first checks raise, as a bug in a check would."""

    failures = 2

    def _check(self):
        if self.failures:
            self.failures -= 1
            raise RuntimeError('boom')
        return super()._check()


def test_the_thread_survives_a_check_that_raises():
    clock = VirtualClock()
    checker = Flaky(command='true', interval=10.0, clock=clock)
    checker.start()
    try:
        for errors in (1, 2):
            clock.wait_for_sleepers()
            assert checker.errors == errors
            assert checker.latest().healthy is None
            clock.advance(10.0)
        clock.wait_for_sleepers()
        assert checker.latest().healthy is True and checker.errors == 2
    finally:
        checker.stop(5)
