"""The [metrics] endpoint of a real heartbeat-broker and heartbeat-agent,
scraped over HTTP and parsed as Prometheus text."""

import re
import urllib.request

import pytest

from heartbeat.testing.agent import AgentProcess
from heartbeat.testing.agent import broker_with_agents
from heartbeat.testing.scrape import parse
from heartbeat.testing.scrape import value
from heartbeat.testing.waiting import wait_for

pytest.importorskip('prometheus_client')

pytestmark = [pytest.mark.broker]

METRICS = {'metrics': {'enabled': True, 'broker_port': 0, 'agent_port': 0}}
URL = re.compile(r'Serving metrics on (http://\S+/metrics)\.')


def endpoint(daemon):
    """The URL the daemon logged once its endpoint listens."""
    def logged():
        found = URL.findall(daemon.log_tail(100000))
        return found[-1] if found else None
    return wait_for(logged, timeout=30)


def scrape(url):
    """The samples the endpoint at ``url`` serves."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        return parse(resp.read().decode())


@pytest.fixture
def broker():
    with broker_with_agents('hbme', METRICS) as pair:
        yield pair


def test_broker_serves_its_writer_rpc_and_fencing_metrics(broker):
    broker, _ = broker
    url = endpoint(broker)
    with broker.client() as client:
        client.get_status()
        member = client.get_status().host.member_id
    key = {'group': broker.status().own.group, 'member': member}
    samples = wait_for(lambda: (lambda s: s if (value(
        s, 'heartbeat_reports_published_total', **key) or 0) > 0 else None)(
            scrape(url)), timeout=30)
    assert value(samples, 'heartbeat_reports_failed_total', **key) == 0
    # Two get_status calls above (and the test harness's own) were timed.
    assert value(samples, 'heartbeat_rpc_seconds_count',
                 method='get_status') >= 2
    assert value(samples, 'heartbeat_rpc_seconds_bucket',
                 method='get_status', le='+Inf') >= 2
    assert value(samples, 'heartbeat_rpc_seconds_sum',
                 method='get_status') > 0
    # One lockspace state is current: the one get_status shows.
    lockspace = broker.status().fencing.lockspace.state
    current = [labels for (name, labels), v in samples.items()
               if name == 'heartbeat_lockspace_state' and v == 1]
    assert current == [(('state', lockspace),)]
    assert value(samples, 'heartbeat_lease_held') == 0
    assert value(samples, 'heartbeat_fencing_safe') == 0
    assert value(samples, 'heartbeat_writer_healthy') == 1
    assert value(samples, 'heartbeat_writer_stalled') == 0
    assert value(samples, 'heartbeat_broker_uptime_seconds') > 0
    # The broker stops its endpoint with itself.
    assert broker.stop() == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_agent_serves_its_state_and_score(broker):
    broker, agents = broker
    broker_url = endpoint(broker)
    agent = AgentProcess(broker, ['sleep', '300'], overrides={
        'agent': {'loop_interval': 0.5}, **METRICS})
    agents.append(agent)
    agent.start()
    url = endpoint(agent)
    assert url != broker_url

    def running():
        s = scrape(url)
        return s if value(s, 'heartbeat_agent_state',
                          state='running') == 1 else None
    samples = wait_for(running, timeout=30)
    states = [labels for (name, labels), v in samples.items()
              if name == 'heartbeat_agent_state' and v == 1]
    assert states == [(('state', 'running'),)]
    assert value(samples, 'heartbeat_agent_score') > 0
    assert value(samples, 'heartbeat_agent_workload_running') == 1
    assert value(samples, 'heartbeat_agent_broker_reachable') == 1
