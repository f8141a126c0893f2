"""The clock pair (time and waits) and the virtual clock of the tests."""

import threading
import time

import pytest

from heartbeat import clock as clock_mod
from heartbeat.testing.clock import ClockError
from heartbeat.testing.clock import VirtualClock


def test_the_real_clock_is_monotonic_and_waits_for_real():
    clock = clock_mod.MONOTONIC
    event = threading.Event()
    before = clock.now()
    assert clock.wait(event, 0.01) is False
    assert clock() - before >= 0.01
    event.set()
    assert clock.wait(event, 10) is True
    cond = threading.Condition()
    with cond:
        assert clock.wait(cond, 0) is False


def test_a_bare_function_keeps_working_with_real_waits():
    now = [5.0]
    clock = clock_mod.as_clock(lambda: now[0])
    assert isinstance(clock, clock_mod.Clock)
    assert clock.now() == clock() == 5.0
    now[0] = 7.0
    assert clock.now() == 7.0
    assert clock.wait(threading.Event(), 0.001) is False
    assert clock_mod.as_clock(time.monotonic) is clock_mod.MONOTONIC
    virtual = VirtualClock()
    assert clock_mod.as_clock(virtual) is virtual


def test_virtual_events_run_in_order_and_never_in_the_past():
    clock = VirtualClock(start=10.0)
    ran = []
    clock.call_later(2, lambda: ran.append(('b', clock.now())))
    clock.call_at(11, lambda: ran.append(('a', clock.now())))
    clock.call_at(12, lambda: ran.append(('c', clock.now()))).cancel()
    assert clock.advance(5) == 2
    assert ran == [('a', 11.0), ('b', 12.0)] and clock.now() == 15.0
    with pytest.raises(ClockError):
        clock.call_at(14, lambda: None)


def sleeper(clock, waitable, timeout, out):
    def run():
        if isinstance(waitable, threading.Condition):
            with waitable:
                out.append(clock.wait(waitable, timeout))
        else:
            out.append(clock.wait(waitable, timeout))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize('kind', [threading.Event, threading.Condition])
def test_a_virtual_wait_ends_when_time_is_moved_past_it(kind):
    clock = VirtualClock()
    out = []
    thread = sleeper(clock, kind(), 30.0, out)
    clock.wait_for_sleepers()
    assert clock.next_wakeup() == 30.0 and clock.waits_begun == 1
    clock.advance(29.0)
    thread.join(0.05)
    assert out == [] and clock.sleepers() == 1
    clock.advance(1.0)
    thread.join(5)
    assert out == [False] and clock.sleepers() == 0
    assert clock.next_wakeup() is None


def test_a_virtual_wait_ends_at_once_when_the_event_is_set():
    clock = VirtualClock()
    event = threading.Event()
    out = []
    thread = sleeper(clock, event, 3600.0, out)
    clock.wait_for_sleepers()
    event.set()
    thread.join(5)
    assert out == [True] and clock.now() == 0.0
    assert clock.wait(event, 10) is True


def test_a_virtual_wait_ends_at_once_when_the_condition_is_notified():
    clock = VirtualClock()
    cond = threading.Condition()
    out = []
    thread = sleeper(clock, cond, 3600.0, out)
    clock.wait_for_sleepers()
    with cond:
        cond.notify_all()
    thread.join(5)
    assert out == [True] and clock.now() == 0.0


def test_advance_on_wait_moves_the_time_itself():
    clock = VirtualClock(advance_on_wait=True)
    ran = []
    clock.call_at(4.0, lambda: ran.append(clock.now()))
    assert clock.wait(threading.Event(), 5.0) is False
    assert clock.now() == 5.0 and ran == [4.0]
    cond = threading.Condition()
    with cond:
        assert clock.wait(cond, 0) is False
    assert clock.now() == 5.0


def test_wait_for_sleepers_says_when_nobody_comes():
    with pytest.raises(AssertionError, match='expected 1'):
        VirtualClock().wait_for_sleepers(timeout=0.01)
