"""The election: candidates, the best host, ties, the runner, the gate."""

import dataclasses

import pytest

from heartbeat.agent import election
from heartbeat.agent.election import Candidate
from heartbeat.agent.election import MigrationGate
from heartbeat.broker import status as st
from tests.unit.agent import statuses
from tests.unit.agent.statuses import peer


def cand(host_id, score=3400, up=True, maintenance=False, runs=False):
    return Candidate(host_id=host_id, member_id='host-%d' % host_id,
                     score=score, up=up, maintenance=maintenance,
                     runs_workload=runs)


def test_candidates_from_the_peers():
    status = statuses.status(peers=(
        peer(3, 2000, state='running'),
        peer(2, 1000, up=None),
        peer(None, 3400),
        peer(4, 3400, maintenance='local'),
        peer(5, None, running=True, state='global_maintenance')))
    cands = election.candidates(status)
    assert [c.host_id for c in cands] == [1, 2, 3, 4, 5]
    by_id = {c.host_id: c for c in cands}
    assert by_id[1].is_self and not by_id[3].is_self
    assert by_id[3].runs_workload and by_id[3].score == 2000
    # A member the observer has not judged yet is not up.
    assert not by_id[2].up
    assert by_id[4].maintenance and not by_id[3].maintenance
    # The payload says it runs (global maintenance keeps it running).
    assert by_id[5].runs_workload and by_id[5].score == 0


@pytest.mark.parametrize('state, running', [
    ('workload_starting', True), ('running', True),
    ('running_bad_health', True), ('stopping', True),
    ('force_stopping', True), ('idle', False), ('maybe_away', False),
    ('acquiring', False), (None, False), ('no-such-state', False)])
def test_running_states_of_peers(state, running):
    status = statuses.status(peers=(peer(2, state=state),))
    assert election.candidates(status)[1].runs_workload is running


def test_own_host_built_from_the_own_state_when_not_a_peer():
    status = statuses.status(self_peer=False, own_score=1234,
                             own_state='running', local=True,
                             peers=(peer(2),))
    own = election.candidates(status)[0]
    assert (own.host_id, own.score, own.up, own.is_self) == (
        1, 1234, True, True)
    assert own.runs_workload and own.maintenance


def test_no_own_host_without_a_host_id():
    status = statuses.status(host_id=None, self_peer=False,
                             peers=(peer(2),))
    assert [c.host_id for c in election.candidates(status)] == [2]


def test_best_is_the_highest_score():
    assert election.best([cand(1, 2000), cand(2, 3400),
                          cand(3, 3000)]).host_id == 2


def test_ties_go_to_the_lowest_host_id():
    assert election.best([cand(3, 3400), cand(2, 3400),
                          cand(5, 3400)]).host_id == 2


def test_best_skips_down_maintenance_and_zero_hosts():
    cands = [cand(1, 3400, up=False), cand(2, 3400, maintenance=True),
             cand(3, 0), cand(4, 100)]
    assert election.best(cands).host_id == 4
    assert election.best(cands[:3]) is None
    assert election.best([]) is None


def test_runner_is_an_up_host_that_runs_it():
    assert election.runner([cand(1), cand(2, up=False, runs=True)]) is None
    assert election.runner([cand(4, runs=True), cand(3, runs=True),
                            cand(1)]).host_id == 3
    # A host in maintenance that still runs it is the runner.
    assert election.runner([cand(2, maintenance=True,
                                 runs=True)]).host_id == 2


def test_gate_fires_after_consecutive_loops():
    gate = MigrationGate()
    better = cand(2, 3400)
    assert gate.check(2600, better, 800, 3) == (
        False, 'peer host-2 score 3400 >= 2600 + 800 (1 of 3 loops)')
    assert gate.check(2600, better, 800, 3)[0] is False
    assert gate.check(2600, better, 800, 3) == (
        True, 'peer host-2 score 3400 >= 2600 + 800 for 3 loops')
    # Firing starts over.
    assert gate.count == 0


def test_gate_needs_the_full_threshold():
    gate = MigrationGate()
    fired, why = gate.check(2601, cand(2, 3400), 800, 1)
    assert not fired
    assert why == 'peer host-2 score 3400 < 2601 + 800'
    assert gate.check(2600, cand(2, 3400), 800, 1)[0]


def test_one_good_loop_resets_the_count():
    gate = MigrationGate()
    for _ in range(2):
        gate.check(2400, cand(2, 3400), 800, 3)
    assert not gate.check(3000, cand(2, 3400), 800, 3)[0]
    assert gate.count == 0
    for _ in range(2):
        assert not gate.check(2400, cand(2, 3400), 800, 3)[0]
    assert gate.check(2400, cand(2, 3400), 800, 3)[0]


def test_gate_without_a_peer():
    gate = MigrationGate(count=2)
    assert gate.check(0, None, 800, 3) == (False,
                                           'no peer may take the workload')
    assert gate.count == 0


def test_peer_scores_are_never_negative():
    status = statuses.status(peers=(st.Peer(host_id=2, score=-5, up=True),))
    assert election.candidates(status)[1].score == 0


def test_a_peer_whose_agent_went_silent_is_left_out():
    stale = peer(2, 3400, state='running', running=True)
    stale = dataclasses.replace(
        stale, payload={**stale.payload, st.AGENT_STALE: True})
    status = statuses.status(peers=(stale, peer(3, 3000)))
    cands = election.candidates(status)
    assert [c.host_id for c in cands] == [1, 3]
    # Nobody is seen running the workload, and host 1 is the best.
    assert election.runner(cands) is None
    assert election.best(cands).host_id == 1
