"""heartbeat-agent as an operator meets it, beside one real broker
(fencer none): a broker that is not there yet, a command that does not
exist, options that cannot work, and an agent restarted under its
workload."""

import signal
import subprocess
import sys
import time

import pytest

from heartbeat.testing.agent import AgentProcess
from heartbeat.testing.agent import broker_with_agents
from heartbeat.testing.waiting import wait_for
from heartbeat.workload import procs

pytestmark = [pytest.mark.broker]

FAST = {'agent': {'loop_interval': 0.5, 'start_failure_expiry': 600}}


@pytest.fixture
def broker():
    # Not started: each test starts it when its agent should find it.
    with broker_with_agents('hbag', start=False) as pair:
        yield pair


def agent_payload(broker):
    return broker.status().own.payload.get('agent', {})


def stale(broker):
    return any(p.is_self and p.payload.get('agent_stale') is True
               for p in broker.status().peers.members)


def test_waits_for_the_broker_then_runs_and_survives_a_restart(broker):
    broker, agents = broker
    agent = AgentProcess(broker, ['sleep', '300'], overrides=FAST)
    agents.append(agent)
    agent.start()
    time.sleep(2)
    assert agent.proc.poll() is None
    log = agent.log_tail()
    assert log.count('the agent waits') == 1, log
    assert 'Traceback' not in log
    broker.start()
    status = wait_for(lambda: (lambda s: s if s.own.state == 'running'
                               else None)(broker.status()), timeout=30)
    pid = status.fencing.lease.holders[0].pid
    assert procs.pid_alive(pid)
    # Stopping the agent leaves the workload running; the next adopts it.
    assert agent.stop() == 0
    assert procs.pid_alive(pid)
    wait_for(lambda: broker.status().own.state == 'stopped', timeout=10)
    # Three loops without a post: the broker tells peers not to trust
    # what this agent last said ...
    wait_for(lambda: stale(broker), timeout=10)
    agent.start()
    wait_for(lambda: broker.status().own.state == 'running', timeout=30)
    # ... until it posts again.
    wait_for(lambda: not stale(broker), timeout=10)
    assert agent_payload(broker)['workload_pid'] == pid
    history = agent_payload(broker)['history']
    assert history[-1]['old'] == 'starting', history


def test_a_command_that_does_not_exist_is_a_failed_start(broker):
    broker, agents = broker
    broker.start()
    agent = AgentProcess(broker, ['/nonexistent/workload', '--serve'],
                         overrides=FAST)
    agents.append(agent)
    agent.start()
    reasons = wait_for(lambda: [
        t['reason'] for t in agent_payload(broker).get('history', [])
        if t['old'] == 'acquiring'], timeout=30)
    assert any('/nonexistent/workload' in r for r in reasons), reasons
    # Each failed start costs points; max_start_failures of them zero it.
    status = wait_for(lambda: (lambda s: s if s.own.score == 0 else None)(
        broker.status()), timeout=30)
    assert agent_payload(broker)['breakdown']['failed_starts'] < 0
    assert not status.fencing.lease.held
    assert 'Traceback' not in agent.log_tail(20000)


@pytest.mark.parametrize('section,option,value', [
    ('agent', 'loop_interval', '30'),
    ('agent', 'migrate_threshold', '0'),
    ('workload', 'command', ''),
])
def test_options_that_cannot_work_are_refused_with_the_option_named(
        broker, section, option, value):
    broker, _ = broker
    agent = AgentProcess(broker, ['sleep', '300'],
                         overrides={section: {option: value}})
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.agent', '--config-file',
         agent.config_path], capture_output=True, text=True, timeout=30,
        check=False)
    assert proc.returncode == 2, proc.stderr
    assert option in proc.stderr
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines()
              if 'heartbeat-agent: error' in line]
    assert len(errors) == 1, proc.stderr


def test_sighup_applies_a_new_loop_interval_in_place(broker):
    broker, agents = broker
    broker.start()
    agent = AgentProcess(broker, ['sleep', '300'], overrides=FAST)
    agents.append(agent)
    agent.start()
    wait_for(lambda: broker.status().own.state == 'running', timeout=30)
    pid = agent.proc.pid
    workload = agent_payload(broker)['workload_pid']
    agent.sections['agent']['loop_interval'] = 0.25
    agent.sections['agent']['state_dir'] = agent.state_dir + '-elsewhere'
    agent.write_conf()
    agent.signal(signal.SIGHUP)
    wait_for(lambda: agent_payload(broker).get('loop_interval') == 0.25,
             timeout=20)
    log = agent.log_tail(20000)
    assert 'reloaded in place' in log, log
    # Same agent process, same workload; a fixed option waits for a
    # restart.
    assert agent.proc.pid == pid and agent.proc.poll() is None
    assert agent_payload(broker)['workload_pid'] == workload
    assert broker.status().own.state == 'running'
    assert 'agent.state_dir' in log
