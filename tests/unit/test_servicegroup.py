"""The servicegroup API on the storage driver, with a fake observer clock."""

import datetime
import threading
import time

import pytest

from heartbeat import drivers
from heartbeat import exception
from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing.members import StorageCluster


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def cluster(tmp_path):
    return StorageCluster(str(tmp_path), report_interval=0.1,
                          service_down_time=0.5, max_hosts=8)


def test_join_publishes_and_observer_judges(cluster):
    member = servicegroup.API(cluster.make_conf(host_id=1))
    clock = FakeClock()
    observer = servicegroup.API(cluster.make_conf(), clock=clock)
    try:
        rep = member.join('compute-1', 'compute', state_cb=lambda: 'enabled')
        m = observer.get_member('compute', 'compute-1')
        assert m.status is Status.UNKNOWN and m.up
        assert m.report.state == 'enabled'
        # The member beats (seq changes) while the observer's clock moves.
        clock.now += 0.3
        rep.beat()
        assert observer.get_member('compute', 'compute-1').status is (
            Status.UP)
        assert observer.service_is_up('compute', 'compute-1')
        # No beat for service_down_time on the observer's clock: down.
        member.reporter('compute-1', 'compute').stop(leave=False)
        observer.refresh('compute')
        clock.now += 0.5
        assert not observer.service_is_up('compute', 'compute-1')
        assert observer.get_member('compute', 'compute-1').status is (
            Status.DOWN)
    finally:
        member.close()
        observer.close()


def test_leave_is_seen_as_left(cluster):
    member = servicegroup.API(cluster.make_conf(host_id=2))
    observer = servicegroup.API(cluster.make_conf())
    try:
        member.join('a', 'g')
        assert observer.service_is_up('g', 'a')
        member.leave('a', 'g')
        m = observer.get_member('g', 'a')
        assert m.status is Status.LEFT and not m.up
        with pytest.raises(exception.NotJoined):
            member.leave('a', 'g')
    finally:
        member.close()
        observer.close()


def test_unknown_member_is_not_up(cluster):
    with servicegroup.API(cluster.make_conf()) as observer:
        assert observer.service_is_up('g', 'ghost') is False
        assert observer.get_updated_time('g', 'ghost') is None
        assert observer.get_all('g') == []


def test_get_updated_time_is_utc(cluster):
    with servicegroup.API(cluster.make_conf(host_id=3)) as sg:
        sg.join('a', 'g')
        when = sg.get_updated_time('g', 'a')
        assert when.tzinfo is datetime.timezone.utc
        age = datetime.datetime.now(datetime.timezone.utc) - when
        assert abs(age.total_seconds()) < 60


class RecordingDriver:
    """Publishes into a list; every other driver call does nothing."""

    def __init__(self, driver):
        self.driver = driver
        self.published = []

    def publish(self, report):
        self.published.append((time.monotonic(), report.seq))
        self.driver.publish(report)

    def __getattr__(self, name):
        return getattr(self.driver, name)


def test_join_publishes_once_and_beats_again_one_interval_later(cluster):
    conf = cluster.make_conf(host_id=3)
    recorder = RecordingDriver(drivers.load(conf))
    member = servicegroup.API(conf, driver=recorder)
    try:
        joined = time.monotonic()
        rep = member.join('one', 'g')
        assert [seq for _, seq in recorder.published] == [1]
        assert rep.counters.beats == 1
        deadline = time.monotonic() + 5
        while len(recorder.published) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second_at, seq = recorder.published[1]
        assert seq == 2
        # One report_interval (0.1 s) after the first, not at once.
        assert second_at - joined >= 0.09, second_at - joined
    finally:
        member.close()


def test_join_twice_returns_same_reporter(cluster):
    with servicegroup.API(cluster.make_conf(host_id=3)) as sg:
        assert sg.join('a', 'g') is sg.join('a', 'g')
        with pytest.raises(exception.HostIdConflict):
            sg.join('b', 'g')


def test_oversized_state_fails_join(cluster):
    with servicegroup.API(cluster.make_conf(host_id=4)) as sg:
        with pytest.raises(exception.PayloadTooLarge):
            sg.join('a', 'g', state_cb=lambda: 'x' * 10000)


@pytest.mark.parametrize('bad', ['', None, 'x' * 256])
def test_bad_names(cluster, bad):
    with servicegroup.API(cluster.make_conf(host_id=4)) as sg:
        with pytest.raises(exception.ConfigError):
            sg.join(bad, 'g')


def test_invalid_config_refused(cluster):
    conf = cluster.make_conf()
    conf.set_override('service_down_time', 0.15, 'heartbeat')
    with pytest.raises(exception.ConfigError, match='twice'):
        servicegroup.API(conf)


def test_real_timer_keeps_reporting(cluster):
    member = servicegroup.API(cluster.make_conf(host_id=5))
    observer = servicegroup.API(cluster.make_conf())
    try:
        member.join('a', 'g')
        first = observer.get_member('g', 'a').report.seq
        import time
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if observer.get_member('g', 'a').report.seq >= first + 3:
                break
            time.sleep(0.05)
        assert observer.get_member('g', 'a').report.seq >= first + 3
        assert observer.get_member('g', 'a').status is Status.UP
    finally:
        member.close()
        observer.close()


def test_backend_follows_the_process(cluster):
    """Threading normally; eventlet inside a monkey-patched process."""
    import os

    from oslo_service import backend

    with servicegroup.API(cluster.make_conf(host_id=6)) as sg:
        sg.join('a', 'g')
        expected = (backend.BackendType.EVENTLET
                    if os.environ.get('HEARTBEAT_EVENTLET') == '1'
                    else backend.BackendType.THREADING)
        assert backend.get_backend_type() is expected


def test_close_reports_finished_on_a_healthy_backend(cluster):
    sg = servicegroup.API(cluster.make_conf(host_id=5))
    sg.join('a', 'g')
    sg.watch('g')
    assert sg.close(timeout=10.0) is True
    assert sg.monitor is None


def test_bounded_step_is_abandoned_at_its_deadline():
    release = threading.Event()
    # A deadline already passed: the step is not waited for at all.
    assert servicegroup._bounded('blocked', release.wait,
                                 time.monotonic()) is False
    release.set()
    assert servicegroup._bounded('quick', lambda: None,
                                 time.monotonic() + 10.0) is True
