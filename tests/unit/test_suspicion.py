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


@given(st.floats(1.0, 40.0),
       st.lists(st.floats(0.05, 20.0), min_size=2, max_size=30))
def test_silence_at_is_where_phi_reaches_the_threshold(threshold, intervals):
    rhythm = rhythm_of(intervals)
    at = suspicion.silence_at(rhythm, suspicion.deviations(threshold))
    assert at is not None and at > rhythm[0]
    reached = suspicion.phi(rhythm, at)
    assert abs(reached - threshold) < 1e-6 * max(1.0, threshold)
    assert suspicion.phi(rhythm, at * 0.999) < threshold


def test_down_after_is_service_down_time_unless_phi_says_sooner():
    regular = rhythm_of([1.0] * 20)
    y = suspicion.deviations(3.0)
    assert suspicion.down_after(regular, 60.0, None) == 60.0
    assert suspicion.down_after(suspicion.NO_RHYTHM, 60.0, y) == 60.0
    sooner = suspicion.down_after(regular, 60.0, y)
    assert 1.0 < sooner < 2.0
    # Never later than service_down_time, however slow the rhythm.
    assert suspicion.down_after(rhythm_of([100.0] * 5), 60.0, y) == 60.0


def test_opted_in_repository_judges_down_by_phi_then_up_again():
    repo = Repository(10.0, wall_clock=lambda: 0.0, phi_threshold=3.0)
    plain = Repository(10.0, wall_clock=lambda: 0.0)
    for seq in range(12):
        for r in (repo, plain):
            r.fold(Report(member_id='m', group='g', seq=seq, incarnation=1),
                   float(seq), 0.0)
    opted = repo.entry(('g', 'm'))
    judged = plain.entry(('g', 'm'))
    assert opted is not None and judged is not None
    last = 11.0
    assert repo.status(opted, last + 1.0).value == 'up'
    assert repo.status(opted, last + 1.5).value == 'down'
    assert plain.status(judged, last + 1.5).value == 'up'
    assert plain.status(judged, last + 10.0).value == 'down'
    member = repo.member('g', 'm', last + 1.5)
    assert member is not None and member.suspicion >= 3.0


def test_a_threshold_at_or_below_log10_2_is_refused():
    try:
        suspicion.deviations(0.3)
    except ValueError as err:
        assert 'phi threshold' in str(err)
    else:
        raise AssertionError('0.3 accepted')
