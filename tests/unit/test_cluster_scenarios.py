"""The pure parts of the simulated cluster: summary, verdict, screen."""

from heartbeat.broker import status as st
from heartbeat import clock
from heartbeat.cluster import demo
from heartbeat.cluster import scenarios
from heartbeat.cluster import screen


class Ticks:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def timeline():
    ticks = Ticks()
    line = scenarios.Timeline(clock=ticks)
    line.add('workload serving on host-1')
    ticks.now += 2.5
    line.add('fault')
    return line


def test_a_failover_that_came_back_once_is_ok():
    runs = [demo.Run('host-1', 10, 1.0, 5.0), demo.Run('host-2', 20, 7.0, 9.0)]
    outcome = scenarios.Outcome('failover', 'host-1', 'host-2', 2.0)
    out = scenarios.summary(outcome, timeline(), runs, 'host-2')
    assert out['ok'] and out['never_two'] and out['overlaps'] == []
    assert [e['at'] for e in out['events']] == [0.0, 2.5]
    lines = scenarios.describe(out)
    assert lines[0] == ('failover: fault on host-1 -> serving on host-2 in '
                        '2.00 s')
    assert lines[1] == 'never two: ok (2 runs of the workload checked)'


def test_two_runs_at_once_fail_the_summary_and_are_named():
    runs = [demo.Run('host-1', 10, 1.0, 5.0), demo.Run('host-2', 20, 4.9, 9.0)]
    outcome = scenarios.Outcome('failover', 'host-1', 'host-2', 2.0)
    out = scenarios.summary(outcome, timeline(), runs, 'host-2')
    assert not out['ok'] and not out['never_two']
    assert 'RAN TWICE: host-1 pid 10 [1.000, 5.000] and host-2 pid 20' in (
        '\n'.join(scenarios.describe(out)))


def test_a_workload_that_never_came_back_fails():
    runs = [demo.Run('host-1', 10, 1.0, 5.0)]
    outcome = scenarios.Outcome('failover', 'host-1',
                                error='did not serve from another host')
    out = scenarios.summary(outcome, timeline(), runs, None)
    assert not out['ok']
    text = '\n'.join(scenarios.describe(out))
    assert 'failover: FAILED: did not serve' in text
    assert 'does not serve at the end' in text
    # Without a scenario: serving and never two is the whole verdict.
    assert scenarios.summary(None, timeline(), runs, 'host-1')['ok']


def test_the_log_of_the_demo_workload_reads_back_as_runs(tmp_path):
    log = tmp_path / 'ticks.log'
    log.write_text('host-1 10 1.000 1.100\nhost-1 10 1.000 1.200\n'
                   'host-2 20 3.000\nhost-2 20 3.0\x00torn\n'
                   'host-3 30 4.0 4.')
    assert demo.intervals(str(log)) == [
        demo.Run('host-1', 10, 1.0, 1.2), demo.Run('host-2', 20, 3.0, 3.0),
        demo.Run('host-3', 30, 4.0, 4.0)]
    assert demo.intervals(str(tmp_path / 'missing')) == []


def test_screen_rows_show_state_lease_and_the_last_reason():
    status = st.BrokerStatus(
        own=st.OwnState(state='running', score=3400, payload={'agent': {
            'history': [{'old': 'workload_starting', 'new': 'running',
                         'reason': 'workload running ' + 'x' * 80}]}}),
        fencing=st.FencingStatus(lease=st.LeaseStatus(held=True)))
    table = screen.rows([('host-1', status), ('host-2', None)], 'host-1')
    assert table[0] == screen.HEADER
    row = table[1]
    assert row[:6] == ['host-1', 'running', '3400', '-', 'held', 'serving']
    assert row[6].startswith('workload_starting -> running: workload')
    assert len(row[6]) == screen.REASON_WIDTH and row[6].endswith('...')
    assert table[2] == ['host-2', 'no broker', '-', '-', '-', '-', '-']


def test_poll_returns_the_first_true_value_or_none_at_the_deadline():
    calls = []

    def predicate():
        calls.append(1)
        return len(calls) >= 3 and 'found'
    assert clock.poll(predicate, timeout=5.0, interval=0.001) == 'found'
    assert clock.poll(lambda: None, timeout=0.01, interval=0.001) is None
