"""A broker marks its agent's claims stale when the agent stops posting."""

from heartbeat.broker.status import agent_stale


def posted(at, interval=None):
    payload = {'agent': {'workload_running': True}}
    if interval is not None:
        payload['agent']['loop_interval'] = interval
    return payload, at


def test_stale_after_three_of_the_agents_own_loops():
    state = posted(100.0, interval=10.0)
    assert not agent_stale(*state, 100.0 + 30.0)
    assert agent_stale(*state, 100.0 + 31.5)
    fast = posted(100.0, interval=0.5)
    assert not agent_stale(*fast, 102.0)
    assert agent_stale(*fast, 103.0)


def test_a_state_posted_by_something_else_never_goes_stale():
    assert not agent_stale(*posted(0.0), 1e9)
    assert not agent_stale({'agent': {'loop_interval': 'often'}}, 0.0, 1e9)
    assert not agent_stale({'agent': {'loop_interval': True}}, 0.0, 1e9)
