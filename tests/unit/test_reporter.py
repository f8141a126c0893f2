"""The report task: first report at once, never dies, counts failures."""

import threading

import pytest

from heartbeat import exception
from heartbeat import reporter as reporter_mod
from heartbeat import reports
from heartbeat.testing.waiting import wait_for


class FlakyDriver:
    """Records publishes; fails the ones whose number is in ``fail``."""

    name = 'flaky'

    def __init__(self, fail=()):
        self.fail = set(fail)
        self.calls = 0
        self.published = []
        self.left = []
        self.event = threading.Event()

    def publish(self, report):
        self.calls += 1
        if self.calls in self.fail:
            raise exception.BackendError('backend said no (%d)' % self.calls)
        self.published.append(report)
        self.event.set()

    def leave(self, report):
        self.left.append(report)


def test_first_report_is_immediate_and_seq_grows():
    drv = FlakyDriver()
    rep = reporter_mod.Reporter(drv, 'g', 'm', interval=5.0)
    rep.start()
    try:
        assert drv.event.wait(2.0), 'first report not sent at once'
    finally:
        rep.stop()
    assert drv.published[0].seq == 1
    assert drv.left and drv.left[0].left and drv.left[0].seq == 2


def test_failures_are_counted_and_retried():
    drv = FlakyDriver(fail={1, 2, 3})
    rep = reporter_mod.Reporter(drv, 'g', 'm', interval=0.02)
    rep.start()
    try:
        wait_for(lambda: len(drv.published) >= 3)
    finally:
        rep.stop(leave=False)
    assert rep.counters.failures == 3
    assert rep.counters.consecutive_failures == 0
    assert 'backend said no (3)' in rep.counters.last_error
    seqs = [r.seq for r in drv.published]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_unexpected_exception_does_not_kill_the_task():
    drv = FlakyDriver()
    calls = []

    def publish(report):
        calls.append(report.seq)
        if len(calls) == 1:
            raise RuntimeError('bug in a driver')
        drv.event.set()

    drv.publish = publish
    rep = reporter_mod.Reporter(drv, 'g', 'm', interval=0.02)
    rep.start()
    try:
        wait_for(lambda: len(calls) >= 3)
    finally:
        rep.stop(leave=False)
    assert rep.counters.failures == 1


def test_state_callback_results_and_failures():
    drv = FlakyDriver()
    answers = iter(['starting', reporter_mod.State('running', 3400,
                                                   {'vm': 'up'})])

    def state():
        try:
            return next(answers)
        except StopIteration:
            raise RuntimeError('callback broke') from None

    rep = reporter_mod.Reporter(drv, 'g', 'm', interval=1.0, state_cb=state)
    for _ in range(3):
        assert rep.beat()
    states = [(r.state, r.score, dict(r.payload)) for r in drv.published]
    assert states == [('starting', None, {}),
                      ('running', 3400, {'vm': 'up'}),
                      ('running', 3400, {'vm': 'up'})]
    assert rep.counters.callback_failures == 1


def test_bad_callback_type_is_a_failure_not_a_crash():
    drv = FlakyDriver()
    rep = reporter_mod.Reporter(drv, 'g', 'm', interval=1.0,
                                state_cb=lambda: 42)
    assert rep.beat() is True
    assert rep.counters.callback_failures == 1
    assert drv.published[0].state is None


def test_incarnations_differ():
    a = reporter_mod.Reporter(FlakyDriver(), 'g', 'm', 1.0)
    b = reporter_mod.Reporter(FlakyDriver(), 'g', 'm', 1.0)
    assert a.incarnation != b.incarnation


@pytest.mark.parametrize('value', [None, 'x'])
def test_plain_states_accepted(value):
    drv = FlakyDriver()
    rep = reporter_mod.Reporter(drv, 'g', 'm', 1.0, state_cb=lambda: value)
    rep.beat()
    assert drv.published[0].state == value


def test_an_incarnation_is_sixty_random_bits():
    incarnations = {reports.ReportSequence('m', 'g').incarnation
                    for _ in range(64)}
    assert len(incarnations) == 64
    assert all(0 <= inc < 2 ** 60 for inc in incarnations)
    # Random, not small: one of 64 is above 2**56 but for a 16**-64 chance.
    assert max(incarnations) >= 2 ** 56
