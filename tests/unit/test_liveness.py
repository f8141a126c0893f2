"""Liveness on the observer's clock, with a fake clock.

The rule lives in :mod:`heartbeat.liveness`; the repository is the one
place that applies it to reads, so it is exercised through it.
"""

import itertools

from heartbeat import liveness
from heartbeat.model import Report
from heartbeat.model import Status
from heartbeat.monitor.repository import Entry
from heartbeat.monitor.repository import Repository

DOWN = 60.0
WALL = 1_700_000_000.0


def report(seq, incarnation=1, written_at=0.0, left=False):
    return Report(member_id='m', group='g', seq=seq, incarnation=incarnation,
                  written_at=written_at, left=left)


class Seen:
    """One member folded into a repository read at given observer times."""

    def __init__(self):
        self.repo = Repository(DOWN, wall_clock=lambda: WALL)

    def read(self, rep, now):
        self.repo.fold(rep, now, WALL + now)
        return self

    def status(self, now):
        return self.repo.member('g', 'm', now).status

    @property
    def entry(self):
        return self.repo.entry(('g', 'm'))


def test_first_sight_is_unknown_then_up_on_change():
    seen = Seen().read(report(5), 100.0)
    assert seen.status(100.0) is Status.UNKNOWN
    assert seen.read(report(6), 110.0).status(110.0) is Status.UP


def test_unchanged_first_sight_goes_down_after_down_time():
    seen = Seen().read(report(5), 0.0)
    assert seen.status(DOWN - 0.001) is Status.UNKNOWN
    assert seen.status(DOWN) is Status.DOWN


def test_down_exactly_at_threshold_and_back_up():
    seen = Seen().read(report(1), 0.0).read(report(2), 10.0)
    for t in (20.0, 40.0, 69.999):
        assert seen.read(report(2), t).status(t) is Status.UP
    assert seen.status(70.0) is Status.DOWN
    assert liveness.deadline(seen.entry.last_change, DOWN) == 70.0
    assert seen.read(report(3), 100.0).status(100.0) is Status.UP


def test_writer_clock_is_ignored():
    # The writer's clock is hours off in both directions; only the changes
    # seen on the observer's clock matter.
    seen = Seen().read(report(1, written_at=1e9), 0.0)
    seen.read(report(2, written_at=1e9 - 7200), 5.0)
    assert seen.status(30.0) is Status.UP
    seen.read(report(2, written_at=1e9 + 86400), 66.0)
    assert seen.status(66.0) is Status.DOWN


def test_restart_with_lower_seq_counts_as_change():
    seen = Seen().read(report(500, incarnation=1), 0.0)
    seen.read(report(1, incarnation=2), 10.0)
    assert seen.entry.last_change == 10.0
    assert seen.status(10.0) is Status.UP


def test_same_seq_new_incarnation_is_a_change():
    seen = Seen().read(report(1, incarnation=1), 0.0)
    seen.read(report(1, incarnation=9), 3.0)
    assert seen.entry.changed and seen.entry.last_change == 3.0


def test_left_wins_over_age():
    seen = Seen().read(report(1), 0.0).read(report(2, left=True), 1.0)
    assert seen.status(1000.0) is Status.LEFT


def test_wall_time_of_a_change_follows_the_observer_clocks():
    seen = Seen().read(report(1), 0.0).read(report(2), 10.0)
    assert seen.repo.member('g', 'm', 20.0).last_change_wall == WALL + 10.0


def test_told_liveness_is_judged_by_its_staleness_and_the_last_read():
    judge = liveness.judge_told
    assert judge(False, False, 100.0, 100.5, 1.0) is Status.UP
    assert judge(True, False, 100.0, 100.5, 1.0) is Status.DOWN
    assert judge(False, False, 100.0, 101.0, 1.0) is Status.DOWN
    assert judge(True, True, 100.0, 500.0, 1.0) is Status.LEFT


def test_an_entry_keeps_its_three_bools_apart():
    entry = Entry(report(1), 0.0)
    names = ('changed', 'vanished', 'stale')
    assert [getattr(entry, name) for name in names] == [False] * 3
    for bits in itertools.product((False, True), repeat=3):
        for name, value in zip(names, bits, strict=True):
            setattr(entry, name, value)
        assert tuple(getattr(entry, name) for name in names) == bits
    # A fold clears vanished and sets changed, and nothing else.
    repo = Repository(DOWN, wall_clock=lambda: WALL)
    seen, _ = repo.fold(report(1), 0.0, WALL)
    seen.vanished = seen.stale = True
    repo.fold(report(2), 1.0, WALL)
    assert (seen.changed, seen.vanished, seen.stale) == (True, False, True)
