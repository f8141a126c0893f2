"""Phi-accrual suspicion of a member's silence (pure)."""

from hypothesis import given
from hypothesis import strategies as st

from heartbeat.model import Report
from heartbeat.monitor.repository import Repository
from heartbeat import suspicion


def rhythm_of(intervals):
    rhythm = suspicion.NO_RHYTHM
    for interval in intervals:
        rhythm = suspicion.add(rhythm, interval)
    return rhythm


def test_no_rhythm_no_suspicion():
    assert suspicion.phi(suspicion.NO_RHYTHM, 5.0) is None
    assert suspicion.phi(rhythm_of([1.0]), 5.0) is None


def test_a_regular_member_is_suspected_as_its_silence_grows():
    rhythm = rhythm_of([1.0] * 20)
    on_time = suspicion.phi(rhythm, 1.0)
    late = suspicion.phi(rhythm, 1.2)
    very_late = suspicion.phi(rhythm, 1.5)
    assert on_time < 0.5 < late < very_late
    # The deviation floor (10 % of the mean): 5 deviations late is about
    # one in 10^6..10^7, not infinitely suspicious.
    assert 5 < very_late < 9
    assert suspicion.phi(rhythm, 60.0) == suspicion.PHI_MAX


def test_a_jittery_member_is_suspected_later_than_a_regular_one():
    regular = rhythm_of([1.0] * 50)
    jittery = rhythm_of([0.5, 1.5] * 25)
    assert suspicion.phi(jittery, 1.6) < suspicion.phi(regular, 1.6)


@given(st.lists(st.floats(0.01, 10.0), min_size=2, max_size=50),
       st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_phi_never_decreases_with_the_silence(intervals, a, b):
    rhythm = rhythm_of(intervals)
    low, high = sorted((a, b))
    assert suspicion.phi(rhythm, low) <= suspicion.phi(rhythm, high)
    assert 0.0 <= suspicion.phi(rhythm, low) <= suspicion.PHI_MAX


def test_the_repository_reports_the_suspicion_of_each_member():
    repo = Repository(down_time=10.0)

    def beat(seq, now):
        report = Report(member_id='m', group='g', seq=seq, incarnation=1)
        repo.fold(report, now, now)

    for seq in range(1, 12):
        beat(seq, float(seq))
    member = repo.member('g', 'm', 11.0)
    assert member.suspicion is not None and member.suspicion < 0.5
    later = repo.member('g', 'm', 14.0)
    assert later.suspicion > 8
    # Reported, not acted on: still up until service_down_time.
    assert later.up
