"""The agent's state machine: behaviour, reasons, actions and score.

Time only moves through Inputs.now (drive.Run.step's dt): no sleeps.
"""

from __future__ import annotations

import pytest

from heartbeat.agent import fsm
from heartbeat.agent.fsm import Action
from heartbeat.agent.fsm import State
from heartbeat.agent.settings import AgentSettings
from tests.unit.agent import drive
from tests.unit.agent.drive import HEALTHY
from tests.unit.agent.drive import HELD
from tests.unit.agent.drive import Run
from tests.unit.agent.drive import UNHEALTHY
from tests.unit.agent.statuses import peer

BETTER_PEER = (peer(2, 3400),)


# -- starting and readiness ------------------------------------------------

def test_starting_observes_peers_for_the_brokers_down_time():
    run = Run()
    decision = run.step(observed=None)
    assert decision.state is State.STARTING
    assert decision.reason == 'observing peers for 0 of 60 s'
    assert decision.score.total == 0
    decision = run.step(observed=150.0, down_time=200.0)
    assert decision.state is State.STARTING
    assert decision.reason == 'observing peers for 150 of 200 s'
    decision = run.step(observed=200.0, down_time=200.0)
    assert (decision.state, decision.changed) == (State.IDLE, True)
    assert decision.actions == ()


def test_starting_uses_its_own_down_time_when_the_broker_does_not_say():
    run = Run(AgentSettings(service_down_time=30.0))
    assert run.step(observed=29.0, down_time=0.0).state is State.STARTING
    assert run.step(observed=30.0, down_time=0.0).state is State.IDLE


def test_starting_joins_the_lockspace_while_observing():
    decision = Run().step(observed=10.0, lockspace='left',
                          domain='never_started')
    assert decision.state is State.STARTING
    assert decision.actions == (Action.JOIN_LOCKSPACE,
                                Action.START_DOMAIN_MONITOR)


def test_starting_adopts_a_workload_holding_the_lease():
    decision = Run().step(workload=HEALTHY, holders=HELD)
    assert decision.state is State.RUNNING
    assert decision.reason == 'pid 4242 holds the lease'
    assert decision.actions == ()
    assert decision.score.total == 3400


def test_starting_stops_a_workload_without_the_lease():
    decision = Run().step(workload=HEALTHY, holders=(99,))
    assert decision.state is State.STOPPING
    assert decision.reason == 'pid 4242 runs without the lease'
    assert decision.actions == (Action.STOP_WORKLOAD,)


@pytest.mark.parametrize('args, reason, actions', [
    ({'connected': False}, 'not ready: storage not connected', ()),
    ({'lockspace': 'left'}, 'not ready: lockspace left',
     (Action.JOIN_LOCKSPACE,)),
    ({'lockspace': 'failed'}, 'not ready: lockspace failed',
     (Action.JOIN_LOCKSPACE,)),
    ({'lockspace': 'joining'}, 'not ready: lockspace joining', ()),
    ({'domain': 'never_started'}, 'not ready: domain monitor never_started',
     (Action.START_DOMAIN_MONITOR,)),
    ({'domain': 'stopped', 'lockspace': 'left', 'connected': False},
     'not ready: storage not connected, lockspace left, domain monitor '
     'stopped', (Action.JOIN_LOCKSPACE, Action.START_DOMAIN_MONITOR)),
])
def test_half_configured_asks_for_the_missing_steps(args, reason, actions):
    run = Run()
    for _ in range(3):
        decision = run.step(**args)
        assert decision.state is State.HALF_CONFIGURED
        assert (decision.reason, decision.actions) == (reason, actions)
        assert decision.score.total == 0
    assert run.step().state is State.IDLE


def test_half_configured_leaves_a_running_workload_alone():
    run = Run()
    for _ in range(3):
        decision = run.step(workload=HEALTHY, lockspace='joining')
        assert decision.state is State.HALF_CONFIGURED
        assert decision.actions == ()
        assert 'pid 4242 is left alone' in decision.reason
    assert run.step(workload=HEALTHY, holders=HELD).state is State.RUNNING


def test_idle_loses_readiness():
    run = drive.reach(State.IDLE)
    decision = run.step(domain='stopped')
    assert decision.state is State.HALF_CONFIGURED
    assert decision.actions == (Action.START_DOMAIN_MONITOR,)


# -- election and starting -------------------------------------------------

def test_idle_starts_when_best_and_nobody_runs_it():
    run = drive.reach(State.IDLE)
    decision = run.step(peers=(peer(2, 3000),))
    assert decision.state is State.ACQUIRING
    assert decision.actions == (Action.START_WORKLOAD,)
    assert decision.reason == 'host-1 has the best score 3400'


@pytest.mark.parametrize('peers, reason', [
    ((peer(2, 1000, state='running'),), 'workload runs on host-2'),
    ((peer(3, 100, running=True, state='global_maintenance'),),
     'workload runs on host-3'),
    ((peer(2, 3401),), 'host-2 has the best score 3401'),
])
def test_idle_waits(peers, reason):
    run = drive.reach(State.IDLE)
    for _ in range(3):
        decision = run.step(peers=peers)
        assert (decision.state, decision.reason) == (State.IDLE, reason)
        assert decision.actions == ()


def test_ties_go_to_the_lowest_host_id():
    host2 = drive.reach(State.IDLE)
    assert host2.step(host_id=2, peers=(peer(1, 3400),)).reason == (
        'host-1 has the best score 3400')
    assert host2.state is State.IDLE
    host1 = drive.reach(State.IDLE)
    assert host1.step(peers=(peer(2, 3400),)).state is State.ACQUIRING


def test_down_or_maintenance_peers_do_not_count():
    run = drive.reach(State.IDLE)
    decision = run.step(peers=(
        peer(2, 3400, up=False, state='running'),
        peer(3, 3400, up=None),
        peer(4, 3400, maintenance='local', state='idle')),
        readings={'network': 0.5})
    assert decision.state is State.ACQUIRING
    assert decision.reason == 'host-1 has the best score 2600'


def test_idle_waits_while_a_restarted_broker_observes():
    run = drive.reach(State.IDLE)
    decision = run.step(observed=5.0)
    assert (decision.state, decision.reason) == (
        State.IDLE, 'observing peers for 5 of 60 s')
    assert decision.actions == ()


def test_a_zero_score_host_never_starts():
    run = drive.reach(State.IDLE)
    decision = run.step(readings={'storage_domain': False})
    assert decision.state is State.IDLE
    assert decision.score.total == 0
    assert decision.reason.startswith('no host may run the workload')


def test_acquiring_waits_for_the_launch_result():
    run = drive.reach(State.ACQUIRING)
    decision = run.step(global_on=True, local=True)
    assert (decision.state, decision.reason) == (
        State.ACQUIRING, 'waiting for the launch result')
    assert decision.actions == ()


def test_a_busy_lease_is_not_a_failure():
    run = drive.reach(State.ACQUIRING)
    decision = run.step(launch=fsm.LaunchResult('busy'))
    assert (decision.state, decision.reason) == (
        State.IDLE, 'lease held by another host')
    assert run.agent.failed_starts == 0
    assert decision.score.total == 3400


def test_failed_starts_cost_points_then_zero_and_expire():
    run = drive.reach(State.ACQUIRING)
    error = 'command not found: /opt/app'
    decision = run.step(launch=fsm.LaunchResult('failed', error=error))
    assert decision.state is State.IDLE
    assert decision.reason == error + ' (failed start 1 of 3)'
    assert decision.score.total == 3350
    for count in (2, 3):
        assert run.step().state is State.ACQUIRING
        decision = run.step(launch=fsm.LaunchResult('failed', error=error))
        assert decision.reason.endswith('(failed start %d of 3)' % count)
    assert decision.score.total == 0
    # Scoring 0, this host no longer starts the workload.
    assert run.step().state is State.IDLE
    # The failures expire start_failure_expiry after they happened.
    decision = run.step(dt=600.0)
    assert run.agent.failed_starts == 0
    assert decision.state is State.ACQUIRING


def test_a_launch_result_survives_a_broker_outage():
    run = drive.reach(State.ACQUIRING)
    decision = run.step(None, launch=drive.STARTED, broker_error='timed out')
    assert decision.state is State.ACQUIRING and not decision.changed
    decision = run.step(workload=drive.STARTING_UP)
    assert decision.state is State.WORKLOAD_STARTING


def test_no_launch_result_for_start_timeout():
    run = drive.reach(State.ACQUIRING)
    decision = run.step(dt=600.0)
    assert decision.state is State.IDLE
    assert decision.reason == ('no launch result within 600 s '
                               '(failed start 1 of 3)')


def test_workload_starting_until_healthy():
    run = drive.reach(State.WORKLOAD_STARTING)
    decision = run.step(workload=drive.STARTING_UP, dt=599.0)
    assert decision.state is State.WORKLOAD_STARTING
    assert decision.reason == 'waiting for health: HTTP 503'
    decision = run.step(workload=HEALTHY, holders=HELD)
    assert (decision.state, decision.reason) == (State.RUNNING,
                                                 'workload healthy')


def test_no_health_check_counts_as_healthy():
    run = drive.reach(State.WORKLOAD_STARTING)
    decision = run.step(workload=drive.UNCHECKED)
    assert decision.state is State.RUNNING


def test_workload_not_healthy_within_start_timeout():
    run = drive.reach(State.WORKLOAD_STARTING)
    decision = run.step(workload=drive.STARTING_UP, dt=600.0)
    assert decision.state is State.STOPPING
    assert decision.actions == (Action.STOP_WORKLOAD,)
    assert decision.reason == 'not healthy within 600 s (failed start 1 of 3)'
    assert run.agent.failed_starts == 1


# -- running -----------------------------------------------------------------

def test_running_stays_and_publishes_its_score():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=HELD)
    assert (decision.state, decision.changed) == (State.RUNNING, False)
    assert decision.reason == 'no peer may take the workload'
    assert decision.score.total == 3400
    assert decision.workload_running and decision.workload_pid == 4242


def test_running_asks_a_restarted_broker_for_the_domain_monitor():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=HELD,
                        domain='never_started')
    assert decision.state is State.RUNNING
    assert decision.actions == (Action.START_DOMAIN_MONITOR,)


def test_running_waits_out_a_lockspace_being_joined():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=HELD, lockspace='joining')
    assert decision.state is State.RUNNING
    assert decision.reason == 'lockspace joining; pid 4242 keeps running'


def test_migration_needs_the_threshold_for_migrate_after_loops():
    run = drive.reach(State.RUNNING)
    bad = {'workload': HEALTHY, 'holders': HELD, 'peers': BETTER_PEER,
           'readings': {'network': 0.0}}
    assert run.step(**bad).reason == (
        'peer host-2 score 3400 >= 1800 + 800 (1 of 3 loops)')
    assert run.step(**bad).state is State.RUNNING
    # One good loop starts the count again.
    assert run.step(workload=HEALTHY, holders=HELD,
                    peers=BETTER_PEER).reason == (
        'peer host-2 score 3400 < 3400 + 800')
    assert run.step(**bad).state is State.RUNNING
    assert run.step(**bad).state is State.RUNNING
    decision = run.step(**bad)
    assert decision.state is State.STOPPING
    assert decision.reason == (
        'peer host-2 score 3400 >= 1800 + 800 for 3 loops')
    assert decision.actions == (Action.STOP_WORKLOAD,)


def test_no_migration_below_the_threshold():
    run = drive.reach(State.RUNNING)
    for _ in range(10):
        decision = run.step(workload=HEALTHY, holders=HELD,
                            peers=BETTER_PEER, readings={'network': 0.51})
        assert decision.state is State.RUNNING


def test_migration_follows_live_settings():
    run = drive.reach(State.RUNNING)
    run.agent.settings = AgentSettings(migrate_threshold=100,
                                       migrate_after=1)
    decision = run.step(workload=HEALTHY, holders=HELD, peers=BETTER_PEER,
                        readings={'network': 0.9})
    assert decision.state is State.STOPPING


def test_bad_health_for_bad_health_timeout_stops():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=UNHEALTHY, holders=HELD)
    assert decision.state is State.RUNNING_BAD_HEALTH
    assert decision.reason == 'health check failed: exit status 1'
    decision = run.step(workload=UNHEALTHY, holders=HELD, dt=299.0)
    assert decision.state is State.RUNNING_BAD_HEALTH
    assert decision.reason == ('health failing for 299 of 300 s: exit '
                               'status 1')
    decision = run.step(workload=UNHEALTHY, holders=HELD, dt=1.0)
    assert (decision.state, decision.reason) == (State.STOPPING,
                                                 'health failed for 300 s')
    assert decision.actions == (Action.STOP_WORKLOAD,)


def test_bad_health_timer_starts_again_after_recovery():
    run = drive.reach(State.RUNNING_BAD_HEALTH)
    run.step(workload=UNHEALTHY, holders=HELD, dt=250.0)
    assert run.step(workload=HEALTHY, holders=HELD).state is State.RUNNING
    run.step(workload=UNHEALTHY, holders=HELD)
    decision = run.step(workload=UNHEALTHY, holders=HELD, dt=250.0)
    assert decision.state is State.RUNNING_BAD_HEALTH


def test_workload_gone_then_back():
    run = drive.reach(State.RUNNING)
    decision = run.step()
    assert (decision.state, decision.reason) == (
        State.MAYBE_AWAY, 'workload pid ? is gone')
    decision = run.step(dt=30.0)
    assert decision.reason == 'workload gone for 30 of 40 s'
    decision = run.step(workload=HEALTHY, holders=HELD)
    assert (decision.state, decision.reason) == (
        State.RUNNING, 'workload pid 4242 is back')


def test_unexpectedly_down_cools_down_at_score_zero():
    run = drive.reach(State.MAYBE_AWAY)
    decision = run.step(dt=40.0)
    assert decision.state is State.UNEXPECTEDLY_DOWN
    assert decision.reason == 'workload gone for 40 s'
    assert decision.actions == (Action.RELEASE_LEASE,)
    assert decision.score.total == 0
    assert decision.score.breakdown['base'] == 3400
    decision = run.step(dt=500.0)
    assert decision.state is State.UNEXPECTEDLY_DOWN
    assert decision.score.total == 0
    decision = run.step(dt=60.0)
    assert (decision.state, decision.reason) == (State.IDLE,
                                                 'cool-down of 560 s over')
    assert decision.score.total == 3400


def test_lease_lost_rejoins_then_idles():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, lockspace='failed')
    assert (decision.state, decision.reason) == (State.LEASE_LOST,
                                                 'lockspace failed')
    assert decision.score.total == 0
    decision = run.step(lockspace='failed')
    assert decision.actions == (Action.JOIN_LOCKSPACE,)
    decision = run.step(lockspace='joining')
    assert (decision.state, decision.actions) == (State.LEASE_LOST, ())
    decision = run.step()
    assert decision.state is State.IDLE
    assert decision.actions == (Action.RELEASE_LEASE,)


def test_a_holder_that_drops_out_is_a_lost_lease():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=(7,))
    assert (decision.state, decision.reason) == (
        State.LEASE_LOST, 'pid 4242 no longer holds the lease')
    decision = run.step(workload=HEALTHY, holders=HELD)
    assert (decision.state, decision.reason) == (
        State.RUNNING, 'pid 4242 holds the lease again')


# -- stopping ----------------------------------------------------------------

def test_stop_then_kill_then_release():
    run = drive.reach(State.STOPPING)
    decision = run.step(workload=HEALTHY, dt=299.0)
    assert (decision.state, decision.actions) == (State.STOPPING, ())
    decision = run.step(workload=HEALTHY, dt=1.0)
    assert decision.state is State.FORCE_STOPPING
    assert decision.reason == 'pid 4242 did not stop within 300 s'
    assert decision.actions == (Action.KILL_WORKLOAD,)
    decision = run.step(workload=HEALTHY)
    assert decision.actions == (Action.KILL_WORKLOAD,)
    decision = run.step()
    assert (decision.state, decision.reason) == (State.IDLE,
                                                 'workload killed')
    assert decision.actions == (Action.RELEASE_LEASE,)


# -- maintenance -------------------------------------------------------------

def test_global_maintenance_keeps_a_running_workload():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=HELD, global_on=True)
    assert (decision.state, decision.actions) == (
        State.GLOBAL_MAINTENANCE, ())
    assert decision.payload()['agent']['workload_running'] is True
    # Whatever happens meanwhile, nothing is started or stopped.
    for workload in (UNHEALTHY, drive.NONE, HEALTHY):
        decision = run.step(workload=workload, holders=HELD, global_on=True,
                            readings={'network': 0.0})
        assert (decision.state, decision.actions) == (
            State.GLOBAL_MAINTENANCE, ())
    decision = run.step(workload=HEALTHY, holders=HELD)
    assert decision.state is State.RUNNING
    assert decision.reason == 'pid 4242 holds the lease'


def test_global_maintenance_does_not_start_a_stopped_workload():
    run = drive.reach(State.GLOBAL_MAINTENANCE)
    for _ in range(5):
        assert run.step(global_on=True).actions == ()
    decision = run.step()
    assert (decision.state, decision.condition) == (
        State.IDLE, 'global maintenance cleared: ready')
    assert run.step().state is State.ACQUIRING


def test_local_maintenance_hands_the_workload_over():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=HELD, local=True)
    assert decision.state is State.STOPPING
    assert decision.reason == 'local maintenance: stopping pid 4242'
    assert decision.actions == (Action.STOP_WORKLOAD,)
    assert decision.score.total == 0
    decision = run.step(local=True)
    assert decision.state is State.LOCAL_MAINTENANCE
    assert decision.actions == (Action.RELEASE_LEASE,
                                Action.STOP_DOMAIN_MONITOR)
    # The monitor is asked again only while the broker still runs it.
    assert run.step(local=True, domain='running').actions == (
        Action.STOP_DOMAIN_MONITOR,)
    decision = run.step(local=True, domain='stopped')
    assert (decision.actions, decision.score.total) == ((), 0)
    assert decision.score.reason == 'local maintenance'
    decision = run.step(domain='stopped')
    assert decision.state is State.HALF_CONFIGURED
    assert decision.actions == (Action.START_DOMAIN_MONITOR,)
    assert run.step().state is State.IDLE


# -- the broker, shutdown, history and payload -----------------------------

def test_broker_unreachable_changes_nothing():
    run = drive.reach(State.RUNNING)
    before = run.decisions[-1]
    decision = run.step(None, broker_error='connection refused',
                        workload=HEALTHY, dt=10000.0)
    assert decision.state is State.RUNNING and not decision.changed
    assert decision.actions == ()
    assert not decision.broker_reachable
    assert decision.reason == 'broker unreachable: connection refused'
    assert decision.history == before.history
    assert decision.score == before.score


def test_shutdown_never_touches_the_workload():
    run = drive.reach(State.RUNNING)
    decision = run.step(workload=HEALTHY, holders=HELD, shutdown=True)
    assert (decision.state, decision.actions) == (State.STOPPED, ())
    assert decision.score.total == 0
    assert decision.reason == 'agent stopped'
    again = run.step(workload=HEALTHY, holders=HELD)
    assert (again.state, again.changed, again.actions) == (
        State.STOPPED, False, ())


def test_history_is_bounded_and_newest_first():
    run = drive.reach(State.UNEXPECTEDLY_DOWN)
    history = run.decisions[-1].history
    assert len(history) == fsm.HISTORY_SIZE
    assert [(t.old, t.new) for t in history] == [
        ('maybe_away', 'unexpectedly_down'), ('running', 'maybe_away'),
        ('workload_starting', 'running'), ('acquiring', 'workload_starting'),
        ('idle', 'acquiring')]
    assert history[0].wall > history[1].wall


def test_payload():
    run = drive.reach(State.RUNNING)
    payload = run.step(workload=HEALTHY, holders=HELD,
                       readings={'network': 0.5}).payload()
    agent = payload['agent']
    assert agent['state'] == 'running'
    assert agent['score'] == 2600
    assert agent['breakdown']['network'] == -800
    assert agent['workload_running'] is True
    assert agent['workload_pid'] == 4242
    assert agent['history'][0] == {
        'wall': run.decisions[-2].history[0].wall,
        'old': 'workload_starting', 'new': 'running',
        'reason': 'workload healthy'}
    assert set(agent) >= {'reason', 'score_reason', 'notes'}


def test_cpu_is_averaged_over_the_window():
    run = drive.reach(State.IDLE)
    decision = run.step(readings={'cpu_load': 2.0}, peers=(peer(2, 0),),
                        own_state='idle')
    # One loop of 2.0 after one of 0.1: the average is 1.05.
    assert decision.score.breakdown['cpu'] == -1000
    for _ in range(89):
        decision = run.step(readings={'cpu_load': 0.1},
                            peers=(peer(2, 1000, state='running'),))
    assert decision.score.breakdown['cpu'] == 0


def test_memory_is_not_held_against_the_host_running_the_workload():
    settings = AgentSettings(memory_mb=4096)
    run = drive.reach(State.RUNNING, settings)
    decision = run.step(workload=HEALTHY, holders=HELD,
                        readings={'free_memory': 10})
    assert decision.score.total == 3400
    idle = drive.reach(State.IDLE, settings)
    decision = idle.step(readings={'free_memory': 10},
                         peers=(peer(2, state='running'),))
    assert decision.score.breakdown['memory'] == -400


@pytest.mark.parametrize('state', list(State))
def test_zero_score_states(state):
    run = drive.reach(state)
    if run.decisions:
        decision = run.decisions[-1]
    else:
        decision = run.step(observed=None)
    zero = state in (State.STARTING, State.HALF_CONFIGURED,
                     State.UNEXPECTEDLY_DOWN, State.LEASE_LOST,
                     State.LOCAL_MAINTENANCE, State.STOPPED)
    assert (decision.score.total == 0) is zero, decision.score
    if zero:
        assert decision.score.reason
