"""The score: every penalty, every reason for 0, and the CPU window."""

import pytest

from heartbeat.agent.score import compute
from heartbeat.agent.score import CpuWindow
from heartbeat.agent.settings import AgentSettings
from heartbeat.broker import status as st
from tests.unit.agent import statuses

DEFAULTS = AgentSettings()


def score(readings=None, cpu=0.1, failed=0, local=False, settings=DEFAULTS,
          runs=False, **status_args):
    status = statuses.status(readings=readings, **status_args)
    return compute(settings, status, cpu, failed, local, runs_workload=runs)


def test_a_healthy_host_scores_the_base():
    result = score()
    assert result.total == 3400
    assert result.reason is None and result.notes == ()
    assert result.breakdown == {'base': 3400, 'network': 0, 'cpu': 0,
                                'memory': 0, 'failed_starts': 0}


@pytest.mark.parametrize('fraction, points', [
    (1.0, 0), (0.75, -400), (0.5, -800), (0.0, -1600),
    # Out-of-range readings are clamped.
    (1.5, 0), (-1.0, -1600)])
def test_network_penalty(fraction, points):
    result = score({'network': fraction})
    assert result.breakdown['network'] == points
    assert result.total == 3400 + points


@pytest.mark.parametrize('load, points', [
    (0.0, 0), (0.4, 0), (0.65, -500), (0.9, -1000), (2.5, -1000),
    (0.5, -200)])
def test_cpu_penalty_is_linear_between_low_and_high(load, points):
    result = score(cpu=load)
    assert result.breakdown['cpu'] == points
    assert result.total == 3400 + points


def test_cpu_penalty_follows_the_options():
    settings = AgentSettings(cpu_load_low=0.0, cpu_load_high=1.0,
                             penalty_cpu=100)
    assert score(cpu=0.25, settings=settings).breakdown['cpu'] == -25


def test_memory_penalty_below_the_workloads_need():
    settings = AgentSettings(memory_mb=4096)
    assert score({'free_memory': 4095}, settings=settings).breakdown[
        'memory'] == -400
    assert score({'free_memory': 4096}, settings=settings).breakdown[
        'memory'] == 0


def test_memory_is_not_checked_without_a_need():
    assert score({'free_memory': 1}).breakdown['memory'] == 0


def test_memory_used_by_the_workload_here_does_not_count():
    settings = AgentSettings(memory_mb=4096)
    result = score({'free_memory': 100}, settings=settings, runs=True)
    assert result.breakdown['memory'] == 0


def test_each_failed_start_costs_points():
    result = score(failed=2)
    assert result.breakdown['failed_starts'] == -100
    assert result.total == 3300


def test_max_start_failures_zeroes():
    result = score(failed=3)
    assert result.total == 0
    assert result.breakdown['failed_starts'] == -150
    assert 'max_start_failures 3' in result.reason


def test_invalid_storage_domain_zeroes():
    result = score({'storage_domain': False})
    assert result.total == 0
    assert result.reason.startswith('storage domain invalid')
    # The penalties stay visible.
    assert result.breakdown['base'] == 3400


def test_invalid_domain_without_the_submonitor():
    result = score({'storage_domain': None}, domain_validated=True,
                   domain_valid=False)
    assert result.total == 0
    assert score({'storage_domain': None}, domain_validated=False,
                 domain_valid=False).total == 3400


def test_local_maintenance_zeroes():
    result = score(local=True)
    assert (result.total, result.reason) == (0, 'local maintenance')


def test_never_below_zero():
    settings = AgentSettings(score_base=1000)
    result = score({'network': 0.0}, cpu=1.0, settings=settings)
    assert result.total == 0
    assert result.reason == 'the penalties take the whole base'
    assert result.breakdown['network'] == -1600


def test_penalties_add_up_as_integers():
    settings = AgentSettings(memory_mb=100)
    result = score({'network': 0.8, 'free_memory': 50}, cpu=0.65,
                   failed=1, settings=settings)
    assert result.total == 3400 - 320 - 500 - 400 - 50
    assert all(isinstance(v, int) for v in result.breakdown.values())
    assert isinstance(result.total, int)


@pytest.mark.parametrize('bad', [
    None,
    st.SubmonitorReading(value=None),
    st.SubmonitorReading(value=0.0, error='ping: not found'),
    st.SubmonitorReading(value='high'),
    st.SubmonitorReading(value=True)])
def test_missing_or_failed_readings_cost_nothing(bad):
    status = statuses.status(readings={'network': None,
                                       'free_memory': None})
    if bad is not None:
        status.submonitors['network'] = bad
        status.submonitors['free_memory'] = bad
    result = compute(AgentSettings(memory_mb=10), status, None, 0, False)
    assert result.total == 3400
    assert result.notes == ('network: no reading', 'cpu_load: no reading',
                            'free_memory: no reading')


def test_cpu_window_weighs_readings_by_time():
    window = CpuWindow(900.0)
    assert window.average(0.0) is None
    window.add(0.0, 0.2)
    assert window.average(0.0) == pytest.approx(0.2)
    window.add(10.0, 0.2)
    window.add(20.0, 1.0)
    # Trapezoids: 10 s at 0.2, 10 s from 0.2 to 1.0 (mean 0.6).
    assert window.average(20.0) == pytest.approx(0.4)


def test_cpu_window_forgets_old_readings():
    window = CpuWindow(30.0)
    window.add(0.0, 5.0)
    window.add(100.0, 0.5)
    window.add(110.0, 0.5)
    assert window.average(110.0) == pytest.approx(0.5)
    assert window.average(200.0) is None


def test_cpu_window_follows_a_shorter_window():
    window = CpuWindow(900.0)
    for t in range(0, 100, 10):
        window.add(float(t), 1.0 if t < 50 else 0.0)
    window.window = 30.0
    assert window.average(90.0) == pytest.approx(0.0)


def test_cpu_window_survives_a_clock_going_back():
    window = CpuWindow(900.0)
    window.add(100.0, 1.0)
    window.add(50.0, 0.3)
    assert window.average(50.0) == pytest.approx(0.3)


def test_a_short_burst_barely_moves_the_averaged_cpu_penalty():
    window = CpuWindow(900.0)
    for t in range(0, 900, 10):
        window.add(float(t), 3.0 if t == 600 else 0.1)
    result = score(cpu=window.average(890.0))
    assert result.breakdown['cpu'] == 0
