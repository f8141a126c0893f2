"""The fetch loop with an in-memory driver (no server needed)."""

import platform
import threading
import time

import pytest

from heartbeat.drivers.base import Capability
from heartbeat import exception
from heartbeat import heap
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.pipeline import Monitor
from heartbeat import servicegroup
from heartbeat.testing.clock import VirtualClock
from heartbeat.testing import config
from heartbeat.testing.memory import MemoryDriver
from heartbeat.testing.waiting import wait_for

# Intervals of the tests on the real clock.
REPORT = 0.05
DOWN = 0.3

#: Intervals of the tests on virtual time (exact in binary, so that sums
#: of them land exactly on deadlines).
V_REPORT = 1.0
V_DOWN = 6.0
V_POLL = 0.5


class PushDriver(MemoryDriver):
    capabilities = frozenset({Capability.PUSH})
    listener = None

    batch = None

    def listen(self, callback, batch=0.0):
        self.listener = callback
        self.batch = batch
        return lambda: setattr(self, 'listener', None)


class IncrementalDriver(MemoryDriver):
    capabilities = frozenset({Capability.INCREMENTAL})

    def snapshot(self, group=None, since=None):
        full = super().snapshot(group, since)
        if since is None:
            return Snapshot(full.reports, cursor=len(self.reads))
        return Snapshot((), complete=False, cursor=len(self.reads))


def make_conf(poll=None, queue=1000, report=REPORT, down=DOWN):
    monitor = {'subscriber_queue_size': queue}
    if poll is not None:
        monitor['poll_interval'] = poll
    return config.make_conf(
        heartbeat={'report_interval': report, 'service_down_time': down},
        heartbeat_monitor=monitor)


def virtual_monitor(driver, poll=V_POLL, queue=1000):
    """A monitor on a virtual clock, and the clock."""
    clock = VirtualClock()
    mon = Monitor(driver, make_conf(poll=poll, queue=queue, report=V_REPORT,
                                    down=V_DOWN), clock=clock)
    return clock, mon


def tick(clock, driver, members=(), seconds=V_POLL, states=None):
    """Beat ``members``, move the time on, and let the loop do its reads."""
    for m in members:
        driver.beat(m, state=(states or {}).get(m))
    clock.advance(seconds)
    clock.wait_for_sleepers()


def kinds(events, member=None):
    return [e.kind for e in events if member in (None, e.member_id)]


@pytest.fixture
def driver():
    return MemoryDriver(make_conf())


def test_watch_replays_then_pushes_up_down_and_state(driver):
    clock, mon = virtual_monitor(driver)
    got = []
    members = ['m1', 'm2']
    states = {}
    for m in members:
        driver.beat(m)
    sub = mon.watch('g', got.append)
    try:
        clock.wait_for_sleepers()
        # The picture is described as it is taken: what changes before
        # shows in it.
        wait_for(lambda: len(got) == 2)
        tick(clock, driver, members)
        wait_for(lambda: kinds(got).count('up') == 2)
        first = got[:2]
        assert [(e.kind, e.replay) for e in first] == [
            ('joined', True), ('joined', True)]
        states['m1'] = 'maintenance'
        tick(clock, driver, members, states=states)
        wait_for(lambda: 'state_changed' in kinds(got, 'm1'))
        change = next(e for e in got if e.kind == 'state_changed')
        assert (change.old_state, change.new_state) == (None, 'maintenance')
        assert change.observed_at == 2 * V_POLL
        # m2 stops beating: down service_down_time after its last change.
        while clock.now() < 2 * V_POLL + V_DOWN:
            assert 'down' not in kinds(got)
            tick(clock, driver, ['m1'], states=states)
        wait_for(lambda: 'down' in kinds(got, 'm2'))
        down = next(e for e in got if e.kind == 'down')
        assert down.observed_at == 2 * V_POLL + V_DOWN
        assert 'down' not in kinds(got, 'm1')
    finally:
        mon.stop()
    assert not sub.active


def test_first_read_of_a_newly_watched_group_keeps_no_event(driver):
    # Nobody but the new subscriber watches the group, and it is shown
    # the picture: the events of that read are told to no one.
    clock, mon = virtual_monitor(driver)
    for m in ('m1', 'm2'):
        driver.beat(m)
    got = []
    mon.watch('g', got.append)
    try:
        clock.wait_for_sleepers()
        wait_for(lambda: len(got) == 2)
        assert [(e.kind, e.replay) for e in got] == [('joined', True)] * 2
        assert mon.stats.events == 0
        tick(clock, driver, ['m1', 'm2'])
        wait_for(lambda: kinds(got).count('up') == 2)
        assert mon.stats.events == 2
    finally:
        mon.stop()


def test_down_is_scheduled_at_the_deadline_not_the_next_poll(driver):
    # A poll every 60 s: only deadline wake-ups can notice anything.
    clock, mon = virtual_monitor(driver, poll=60.0)
    got = []
    driver.beat('m1')
    mon.watch('g', got.append)
    try:
        clock.wait_for_sleepers()
        # First seen at 0: the loop wakes at that deadline, not at 60 s.
        assert clock.next_wakeup() == V_DOWN
        driver.beat('m1')
        tick(clock, driver, seconds=V_DOWN)
        # Reading at the deadline sees the beat: up, not down.
        wait_for(lambda: 'up' in kinds(got))
        assert clock.next_wakeup() == 2 * V_DOWN
        tick(clock, driver, seconds=V_DOWN - 0.5)
        assert 'down' not in kinds(got)
        tick(clock, driver, seconds=0.5)
        wait_for(lambda: 'down' in kinds(got))
        down = next(e for e in got if e.kind == 'down')
        # Down comes a deadline after the last change seen, far
        # sooner than the 60 s poll.
        assert down.observed_at == 2 * V_DOWN
    finally:
        mon.stop()


def test_a_deadline_inside_the_push_batch_wait_is_judged_on_time():
    driver = PushDriver(make_conf())
    clock = VirtualClock()
    conf = make_conf(poll=60.0, report=V_REPORT, down=V_DOWN)
    conf.set_override('push_batch_interval', 3.0, 'heartbeat_monitor')
    mon = Monitor(driver, conf, clock=clock)
    got = []
    driver.beat('m1')
    driver.beat('m2')
    mon.watch('g', got.append)
    try:
        clock.wait_for_sleepers()
        tick(clock, driver, seconds=V_DOWN - 1.5)
        # m1 changes at 4.5 and is read at once; its next change, a
        # second later, waits for the batch (until 7.5), but m2's deadline
        # is at 6.0.
        driver.beat('m1', state='a')
        driver.listener('g')
        wait_for(lambda: any(e.new_state == 'a' for e in got
                             if e.kind == 'state_changed'))
        tick(clock, driver, seconds=1.0)
        driver.beat('m1', state='b')
        driver.listener('g')
        time.sleep(0.2)  # real time: the loop takes the push and waits
        tick(clock, driver, seconds=0.5)
        wait_for(lambda: 'down' in kinds(got, 'm2'))
        down = next(e for e in got if e.kind == 'down')
        assert down.member_id == 'm2' and down.observed_at == V_DOWN
        # The change held back by the batch came with that read.
        assert any(e.kind == 'state_changed' and e.new_state == 'b'
                   and e.member_id == 'm1' for e in got)
        assert 'down' not in kinds(got, 'm1')
    finally:
        mon.stop()


def test_push_reads_the_pushed_group_at_once():
    driver = PushDriver(make_conf())
    mon = Monitor(driver, make_conf(poll=60.0))
    got = []
    driver.beat('m1')
    mon.watch('g', got.append)
    try:
        assert driver.listener is not None
        # A change before the member is shown is shown by its picture.
        wait_for(lambda: 'joined' in kinds(got), timeout=2)
        driver.beat('m1', state='busy')
        driver.listener('g')
        wait_for(lambda: 'state_changed' in kinds(got), timeout=2)
        assert mon.stats.pushes == 1
    finally:
        mon.stop()
    assert driver.listener is None


def test_pushes_within_the_batch_interval_are_read_together():
    driver = PushDriver(make_conf())
    conf = make_conf(poll=60.0)
    conf.set_override('push_batch_interval', 0.3, 'heartbeat_monitor')
    mon = Monitor(driver, conf)
    got = []
    driver.beat('m1')
    mon.watch('g', got.append)
    try:
        wait_for(lambda: 'joined' in kinds(got), timeout=2)
        # The driver may tell the pushes of one batch together.
        assert driver.batch == 0.3
        before = len(driver.reads)
        started = time.monotonic()
        for i in range(10):
            driver.beat('m1', state='s%d' % i)
            driver.listener('g')
            time.sleep(0.01)
        wait_for(lambda: any(e.kind == 'state_changed'
                             and e.new_state == 's9' for e in got),
                 timeout=2)
        took = time.monotonic() - started
        # The first push is read at once, the nine after it together.
        assert len(driver.reads) - before <= 3
        assert mon.stats.pushes == 10
        assert took < 0.3 + 0.1 + 1.0
        # No need to wait for more pushes of a group nobody reads.
        assert driver.listener('nobody') is False
        assert driver.listener('g') is True
    finally:
        mon.stop()


def test_incremental_driver_is_read_with_its_cursor():
    driver = IncrementalDriver(make_conf())
    driver.beat('m1')
    clock, mon = virtual_monitor(driver)
    sub = mon.watch('g')
    try:
        clock.wait_for_sleepers()
        tick(clock, driver)
        tick(clock, driver)
        assert len(driver.reads) == 3
        # Unchanged members of an incremental read stay known...
        assert mon.member('g', 'm1') is not None
        # ...and go down at their deadline like any other.
        tick(clock, driver, seconds=V_DOWN - 2 * V_POLL)
        got = [sub.get(1), sub.get(1)]
        assert kinds(got) == ['joined', 'down']
        assert got[1].observed_at == V_DOWN
    finally:
        mon.stop()
    assert driver.reads[0] == ('g', None)
    assert driver.reads[1][1] == 1 and driver.reads[2][1] == 2


def test_one_read_serves_several_groups_of_a_batched_driver(driver):
    driver.beat('a1', group='a')
    driver.beat('b1', group='b')
    clock, mon = virtual_monitor(driver)
    mon.watch('a')
    mon.watch('b')
    try:
        clock.wait_for_sleepers()
        # The loop may have planned its first read before 'b' was added.
        tick(clock, driver)
        before = len(driver.reads)
        for _ in range(3):
            tick(clock, driver)
        assert len(driver.reads) == before + 3
        assert [m.member_id for m in mon.members('a')] == ['a1']
        assert [m.member_id for m in mon.members('b')] == ['b1']
    finally:
        mon.stop()
    assert set(driver.reads[before:]) == {(None, None)}


def test_failed_reads_are_counted_and_members_go_down(driver):
    clock, mon = virtual_monitor(driver)
    got = []
    driver.beat('m1')
    mon.watch('g', got.append)
    try:
        clock.wait_for_sleepers()
        tick(clock, driver, ['m1'])
        wait_for(lambda: 'up' in kinds(got))
        driver.fail = True
        while clock.now() < V_POLL + V_DOWN:
            tick(clock, driver, ['m1'])
        wait_for(lambda: 'down' in kinds(got))
        assert mon.stats.fetch_errors == mon.stats.consecutive_fetch_errors
        assert mon.stats.fetch_errors == V_DOWN / V_POLL
        assert 'memory backend is down' in mon.stats.last_error
        driver.fail = False
        tick(clock, driver, ['m1'])
        wait_for(lambda: kinds(got).count('up') == 2)
        assert mon.stats.consecutive_fetch_errors == 0
    finally:
        mon.stop()


def test_watch_returns_at_once_and_the_picture_follows_a_failed_read(
        driver):
    driver.beat('m1')
    driver.fail = True
    mon = Monitor(driver, make_conf())
    got = []
    try:
        sub = mon.watch('g', got.append)
        assert sub.active and not mon.covers('g')
        wait_for(lambda: mon.stats.consecutive_fetch_errors >= 2)
        assert got == []
        driver.fail = False
        wait_for(lambda: mon.covers('g'))
        wait_for(lambda: 'joined' in kinds(got))
        assert all(e.replay for e in got)
    finally:
        mon.stop()


def test_watch_does_not_wait_for_a_slow_first_read(driver):
    driver.beat('m1')
    release = threading.Event()
    read = driver.snapshot

    def slow(group, since=None):
        release.wait(10)
        return read(group, since=since)
    driver.snapshot = slow
    mon = Monitor(driver, make_conf())
    got = []
    try:
        started = time.monotonic()
        mon.watch('g', got.append)
        assert time.monotonic() - started < 0.5
        assert got == []
        release.set()
        wait_for(lambda: 'joined' in kinds(got))
    finally:
        release.set()
        mon.stop()


def test_a_subscription_cancelled_before_its_picture_gets_nothing(driver):
    driver.fail = True
    mon = Monitor(driver, make_conf())
    got = []
    try:
        sub = mon.watch('g', got.append)
        sub.cancel()
        driver.fail = False
        other = mon.watch('g')
        wait_for(lambda: mon.covers('g'))
        assert got == [] and other.active
    finally:
        mon.stop()
    assert not other.active


def test_slow_subscriber_does_not_delay_a_fast_one(driver):
    clock, mon = virtual_monitor(driver, queue=2)
    release = threading.Event()
    slow, fast = [], []
    members = ['m%d' % i for i in range(5)]

    def slow_cb(event):
        release.wait(10)
        slow.append(event)

    for m in members:
        driver.beat(m)
    mon.watch('g', slow_cb)
    mon.watch('g', fast.append)
    try:
        clock.wait_for_sleepers()
        tick(clock, driver, members)
        wait_for(lambda: kinds(fast).count('up') == 5)
        tick(clock, driver, seconds=V_DOWN)
        wait_for(lambda: kinds(fast).count('down') == 5)
        assert slow == []
        slow_sub = mon.dispatcher.subscriptions[0]
        assert slow_sub.counters.coalesced > 0
        release.set()
        # The slow one converges: its last word on every member is
        # 'down', whatever was coalesced on the way.
        wait_for(lambda: {e.member_id: e.kind for e in slow}
                 == {m: 'down' for m in members})
        assert len(slow_sub.queue) == 0
    finally:
        mon.stop()


def test_cancel_unwatches_the_group(driver):
    driver.beat('m1')
    mon = Monitor(driver, make_conf())
    sub = mon.watch('g')
    assert mon.covers('g')
    assert next(iter(sub)).kind == 'joined'
    sub.cancel()
    assert not mon.covers('g')
    assert mon.repository.entries('g') == {}
    # Its deadlines go with it: the loop has nothing left to wake for.
    assert len(mon.updater.deadlines) == 0
    assert mon.updater.next_deadline(mon.groups()) is None
    assert list(sub) == []
    mon.stop()


def test_api_answers_from_memory_while_watched(driver):
    conf = make_conf(poll=60.0)
    with servicegroup.API(conf, driver=driver) as sg:
        driver.beat('m1')
        before = len(driver.reads)
        assert sg.service_is_up('g', 'm1')
        assert len(driver.reads) == before + 1   # not watched: a read
        sub = sg.watch('g')
        reads = len(driver.reads)
        for _ in range(20):
            assert sg.service_is_up('g', 'm1')
            assert [m.member_id for m in sg.get_all('g')] == ['m1']
            assert sg.get_updated_time('g', 'm1') is not None
        assert len(driver.reads) == reads        # answered from memory
        # Unwatched groups are still read from the backend.
        sg.get_all('other')
        assert len(driver.reads) == reads + 1
        # refresh() of a watched group reads through the pipeline.
        driver.beat('m1')
        sg.refresh('g')
        assert sg.get_member('g', 'm1').status is Status.UP
        assert [e.kind for e in [sub.get(1), sub.get(1)]] == ['joined', 'up']
        sub.cancel()
        sg.get_all('g')
        assert len(driver.reads) == reads + 3
    assert sg.monitor is None


def test_api_watch_every_group(driver):
    driver.beat('a1', group='a')
    driver.beat('b1', group='b')
    with servicegroup.API(make_conf(), driver=driver) as sg:
        sub = sg.watch(None)
        got = {(e.group, e.member_id) for e in [sub.get(1), sub.get(1)]}
        assert got == {('a', 'a1'), ('b', 'b1')}
        reads = len(driver.reads)
        assert {m.member_id for m in sg.get_all(None)} == {'a1', 'b1'}
        assert sg.service_is_up('b', 'b1')
        assert len(driver.reads) - reads <= 2    # only the loop's polls


def _blind_spell(driver, clock, mon, got, beats_after, vanish=False):
    """m1 is up; reads fail from 1.5 s to 6.5 s; m1 beats ``beats_after``.

    With ``vanish``, m1's record is gone when the backend answers again
    (an expired lease or session), until m1 reports again.

    Its last change is seen at 1.0, so its deadline (7.0) falls just after
    the backend is read again, before its next report can be read.
    """
    driver.beat('m1')
    mon.watch('g', got.append)
    clock.wait_for_sleepers()
    tick(clock, driver, ['m1'])          # seen changing at 0.5
    tick(clock, driver, ['m1'])          # ... and at 1.0
    wait_for(lambda: 'up' in kinds(got))
    tick(clock, driver)                  # 1.5
    driver.fail = True
    while clock.now() < 6.5:
        tick(clock, driver)
    if vanish:
        del driver.reports[('g', 'm1')]
    driver.fail = False
    tick(clock, driver)                  # read again at 7.0
    for at in beats_after:
        while clock.now() < at:
            tick(clock, driver)
        driver.beat('m1')
    while clock.now() < 14.0:
        tick(clock, driver)


def test_a_blind_spell_is_not_a_death():
    driver = MemoryDriver(make_conf())
    clock, mon = virtual_monitor(driver)
    got = []
    try:
        # Seen again 5 s after the backend is back (a slow reconnect on a
        # loaded host), within a service_down_time of it.
        _blind_spell(driver, clock, mon, got, beats_after=[12.0, 13.0])
        assert 'down' not in kinds(got), got
        assert mon.stats.graces == 1
        assert mon.member('g', 'm1').status is Status.UP
    finally:
        mon.stop()


def test_a_member_silent_after_a_blind_spell_goes_down_when_its_grace_ends():
    driver = MemoryDriver(make_conf())
    clock, mon = virtual_monitor(driver)
    got = []
    try:
        _blind_spell(driver, clock, mon, got, beats_after=[])
        wait_for(lambda: 'down' in kinds(got))
        down = next(e for e in got if e.kind == 'down')
        # Read again at 7.0, its deadline: down one service_down_time
        # later, as if last seen then.
        assert down.observed_at == 7.0 + V_DOWN
        assert mon.grace_seconds == V_DOWN
    finally:
        mon.stop()


class HangingDriver(MemoryDriver):
    """A read hangs ``hang`` virtual seconds once (a SIGSTOPped server)."""

    clock = None
    hang = 0.0

    def snapshot(self, group=None, since=None):
        if self.hang:
            hang, self.hang = self.hang, 0.0
            self.clock.advance(hang)
        return super().snapshot(group, since)


def test_a_hung_read_is_a_blind_spell_too():
    driver = HangingDriver(make_conf())
    clock, mon = virtual_monitor(driver)
    driver.clock = clock
    got = []
    driver.beat('m1')
    mon.watch('g', got.append)
    try:
        clock.wait_for_sleepers()
        tick(clock, driver, ['m1'])              # seen changing at 0.5
        wait_for(lambda: 'up' in kinds(got))
        # The next read starts at 1.0 and returns at 6.0; the deadline
        # (6.5) comes before m1's next beat can be read at 7.0.
        driver.hang = 5.0
        tick(clock, driver)
        while clock.now() < 7.0:
            tick(clock, driver)
        driver.beat('m1')
        tick(clock, driver)
        assert 'down' not in kinds(got), got
        assert mon.stats.graces == 1
    finally:
        mon.stop()


def test_a_record_vanished_in_a_blind_spell_is_kept_through_the_grace():
    driver = MemoryDriver(make_conf())
    clock, mon = virtual_monitor(driver)
    got = []
    try:
        _blind_spell(driver, clock, mon, got, beats_after=[12.0, 13.0],
                     vanish=True)
        assert kinds(got) == ['joined', 'up'], got
        assert mon.member('g', 'm1').status is Status.UP
    finally:
        mon.stop()


def test_a_new_group_that_cannot_be_read_does_not_stop_the_others(driver):
    driver.beat('m1')
    read = driver.snapshot

    def snapshot(group=None, since=None):
        if group == 'h':
            raise exception.BackendError('group h is unreadable')
        return read(group, since=since)
    driver.snapshot = snapshot
    mon = Monitor(driver, make_conf())
    got = []
    try:
        mon.watch('g', got.append)
        wait_for(lambda: mon.covers('g'))
        mon.watch('h')
        wait_for(lambda: mon.stats.fetch_errors >= 2)
        # 'g' is still read while 'h' waits for its first read.
        driver.beat('m1')
        wait_for(lambda: 'up' in kinds(got))
        assert not mon.covers('h')
    finally:
        mon.stop()


def test_the_heap_is_trimmed_after_a_big_read_only(driver, monkeypatch):
    trims = []
    real = heap.trim
    monkeypatch.setattr(heap, 'AFTER_REPORTS', 3)
    monkeypatch.setattr(heap, 'trim', lambda: trims.append(real()))
    clock, mon = virtual_monitor(driver)
    for m in ('m1', 'm2'):
        driver.beat(m, group='small')
    for m in ('m1', 'm2', 'm3'):
        driver.beat(m, group='big')
    try:
        mon.watch('small', lambda e: None)
        clock.wait_for_sleepers()
        tick(clock, driver)
        assert trims == []
        mon.watch('big', lambda e: None)
        clock.wait_for_sleepers()
        wait_for(lambda: len(trims) == 1)
        # glibc hands the heap back; a C library without malloc_trim
        # is not asked.
        assert trims == [platform.libc_ver()[0] == 'glibc']
        tick(clock, driver)
        assert len(trims) == 2
    finally:
        mon.stop()
