"""A broker marks its agent's claims stale when the agent stops posting."""

from heartbeat.broker.store import PostedState
from heartbeat.broker import writer


def posted(at, interval=None):
    payload = {'agent': {'workload_running': True}}
    if interval is not None:
        payload['agent']['loop_interval'] = interval
    return PostedState('running', 3400, payload, posted_at=at, version=1)


def test_stale_after_three_of_the_agents_own_loops():
    state = posted(100.0, interval=10.0)
    assert not writer.agent_stale(state, 100.0 + 30.0)
    assert writer.agent_stale(state, 100.0 + 31.5)
    fast = posted(100.0, interval=0.5)
    assert not writer.agent_stale(fast, 102.0)
    assert writer.agent_stale(fast, 103.0)


def test_a_state_posted_by_something_else_never_goes_stale():
    assert not writer.agent_stale(posted(0.0), 1e9)
    odd = PostedState('x', None, {'agent': {'loop_interval': 'often'}}, 0.0,
                      1)
    assert not writer.agent_stale(odd, 1e9)
