"""Liveness on the observer's clock, with a fake clock."""

from heartbeat import liveness
from heartbeat.model import Report
from heartbeat.model import Status

DOWN = 60.0


def report(seq, incarnation=1, written_at=0.0, left=False):
    return Report(member_id='m', group='g', seq=seq, incarnation=incarnation,
                  written_at=written_at, left=left)


def test_first_sight_is_unknown_then_up_on_change():
    obs = liveness.observe(None, report(5), now=100.0)
    assert liveness.judge(obs, 100.0, DOWN) is Status.UNKNOWN
    obs = liveness.observe(obs, report(6), now=110.0)
    assert liveness.judge(obs, 110.0, DOWN) is Status.UP


def test_unchanged_first_sight_goes_down_after_down_time():
    obs = liveness.observe(None, report(5), now=0.0)
    assert liveness.judge(obs, DOWN - 0.001, DOWN) is Status.UNKNOWN
    assert liveness.judge(obs, DOWN, DOWN) is Status.DOWN


def test_down_exactly_at_threshold_and_back_up():
    obs = liveness.observe(None, report(1), now=0.0)
    obs = liveness.observe(obs, report(2), now=10.0)
    for t in (20.0, 40.0, 69.999):
        obs = liveness.observe(obs, report(2), now=t)
        assert liveness.judge(obs, t, DOWN) is Status.UP
    assert liveness.judge(obs, 70.0, DOWN) is Status.DOWN
    assert liveness.deadline(obs, DOWN) == 70.0
    obs = liveness.observe(obs, report(3), now=100.0)
    assert liveness.judge(obs, 100.0, DOWN) is Status.UP


def test_writer_clock_is_ignored():
    # The writer's clock is hours off in both directions; only the changes
    # seen on the observer's clock matter.
    obs = liveness.observe(None, report(1, written_at=1e9), now=0.0)
    obs = liveness.observe(obs, report(2, written_at=1e9 - 7200), now=5.0)
    assert liveness.judge(obs, 30.0, DOWN) is Status.UP
    obs = liveness.observe(obs, report(2, written_at=1e9 + 86400), now=66.0)
    assert liveness.judge(obs, 66.0, DOWN) is Status.DOWN


def test_restart_with_lower_seq_counts_as_change():
    obs = liveness.observe(None, report(500, incarnation=1), now=0.0)
    obs = liveness.observe(obs, report(1, incarnation=2), now=10.0)
    assert obs.last_change == 10.0
    assert liveness.judge(obs, 10.0, DOWN) is Status.UP


def test_same_seq_new_incarnation_is_a_change():
    obs = liveness.observe(None, report(1, incarnation=1), now=0.0)
    obs = liveness.observe(obs, report(1, incarnation=9), now=3.0)
    assert obs.changed and obs.last_change == 3.0


def test_left_wins_over_age():
    obs = liveness.observe(None, report(1), now=0.0)
    obs = liveness.observe(obs, report(2, left=True), now=1.0)
    assert liveness.judge(obs, 1000.0, DOWN) is Status.LEFT
