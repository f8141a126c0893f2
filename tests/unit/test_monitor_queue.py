"""The subscriber queue: order, bound, coalescing and convergence."""

import threading
import time

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from heartbeat.model import MemberDown
from heartbeat.model import MemberJoined
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.model import MemberUp
from heartbeat.model import Report
from heartbeat.monitor.dispatcher import Dispatcher
from heartbeat.monitor.dispatcher import Subscription
from heartbeat.monitor.eventqueue import EventQueue

STATUS_TYPES = {'joined': MemberJoined, 'up': MemberUp,
                'down': MemberDown, 'left': MemberLeft}


def ev(kind, member, state=None, old=None, seq=1, group='g'):
    report = Report(member_id=member, group=group, seq=seq, incarnation=1,
                    state=state)
    common = dict(group=group, member_id=member, report=report,
                  observed_at=float(seq), observed_wall=float(seq))
    if kind == 'state':
        return MemberStateChanged(old_state=old, new_state=state, **common)
    return STATUS_TYPES[kind](**common)


def drain(q):
    out = []
    while True:
        e = q.get(timeout=0)
        if e is None:
            return out
        out.append(e)


def test_in_order_while_under_the_bound():
    q = EventQueue(10)
    sent = [ev('joined', 'a'), ev('up', 'a'), ev('joined', 'b'),
            ev('up', 'b'), ev('state', 'a', old=None, state='s1')]
    for e in sent:
        q.put(e)
    assert drain(q) == sent
    assert q.counters.coalesced == 0 and q.counters.overflows == 0
    assert q.counters.delivered == 5 and q.counters.high_water == 5


def test_down_and_left_go_before_other_members_events_in_member_order():
    q = EventQueue(10)
    for e in [ev('joined', 'a'), ev('up', 'a'), ev('joined', 'b'),
              ev('joined', 'c'), ev('down', 'a', seq=2), ev('up', 'b'),
              ev('up', 'a', seq=3), ev('left', 'c', seq=2)]:
        q.put(e)
    got = [(e.kind, e.member_id, e.report.seq) for e in drain(q)]
    # 'a' keeps its own order (joined, up, down, up again), and so does
    # 'c'; both come before 'b', which nothing urgent happened to.
    assert got == [('joined', 'a', 1), ('up', 'a', 1), ('down', 'a', 2),
                   ('up', 'a', 3), ('joined', 'c', 1), ('left', 'c', 2),
                   ('joined', 'b', 1), ('up', 'b', 1)]
    assert q.counters.coalesced == 0


def test_a_down_in_a_burst_is_not_queued_behind_it():
    q = EventQueue(100)
    for n in range(10000):
        q.put(ev('joined', 'm%05d' % n))
    q.put(ev('down', 'm09999', seq=2))
    # Its Joined waited in the overflow table (the queue was full) and is
    # coalesced into the Down, as the newest status wins there; the Down
    # comes first, before 10,000 Joined events of the others.
    first = q.get(timeout=0)
    assert (first.kind, first.member_id) == ('down', 'm09999')
    assert q.get(timeout=0).member_id == 'm00000'
    assert len(q) == 10000 - 2 and q.counters.coalesced == 1


def test_full_queue_coalesces_per_member_newest_status_wins():
    q = EventQueue(2)
    q.put(ev('joined', 'a'))
    q.put(ev('up', 'a'))
    # Full: the rest goes to the overflow table, per member.
    q.put(ev('down', 'a', seq=2))
    q.put(ev('joined', 'b'))
    q.put(ev('up', 'a', seq=3))
    q.put(ev('up', 'b'))
    q.put(ev('down', 'a', seq=4))
    assert len(q) == 4
    got = [(e.kind, e.member_id, e.report.seq) for e in drain(q)]
    assert got == [('joined', 'a', 1), ('up', 'a', 1),
                   ('down', 'a', 4), ('up', 'b', 1)]
    c = q.counters
    assert (c.received, c.delivered, c.coalesced, c.overflows) == (7, 4, 3, 1)


def test_events_never_overtake_the_overflow():
    q = EventQueue(1)
    q.put(ev('joined', 'a'))
    q.put(ev('up', 'a'))          # overflow
    assert q.get(timeout=0).kind == 'joined'
    # The FIFO has room again, but 'a' still waits in the overflow: a new
    # event must not be delivered before it.
    q.put(ev('down', 'a', seq=2))
    assert [e.kind for e in drain(q)] == ['down']
    # Back to in-order delivery once everything is out.
    q.put(ev('up', 'a', seq=3))
    q.put(ev('down', 'a', seq=4))
    assert [e.kind for e in drain(q)] == ['up', 'down']


def test_state_changes_merge_from_oldest_to_newest():
    q = EventQueue(1)
    q.put(ev('up', 'a'))
    q.put(ev('state', 'a', old='s1', state='s2'))
    q.put(ev('state', 'a', old='s2', state='s3'))
    got = drain(q)
    assert [e.kind for e in got] == ['up', 'state_changed']
    assert (got[1].old_state, got[1].new_state) == ('s1', 's3')
    assert q.counters.coalesced == 1


def test_state_changes_that_cancel_out_disappear():
    q = EventQueue(1)
    q.put(ev('up', 'a'))
    q.put(ev('state', 'a', old='s1', state='s2'))
    q.put(ev('state', 'a', old='s2', state='s1'))
    assert [e.kind for e in drain(q)] == ['up']
    assert q.counters.coalesced == 2


def test_left_drops_a_pending_state_change():
    q = EventQueue(1)
    q.put(ev('up', 'a'))
    q.put(ev('state', 'a', old='s1', state='s2'))
    q.put(ev('left', 'a'))
    assert [e.kind for e in drain(q)] == ['up', 'left']


def test_get_times_out_and_close_wakes_waiters():
    q = EventQueue(3)
    started = time.monotonic()
    assert q.get(timeout=0.05) is None
    assert time.monotonic() - started >= 0.04
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.close()
    t.join(5)
    assert got == [None]
    q.put(ev('up', 'a'))
    assert len(q) == 0


def test_bound_must_be_positive():
    with pytest.raises(ValueError):
        EventQueue(0)


ops = st.lists(st.one_of(
    st.tuples(st.just('status'), st.sampled_from('abc'),
              st.sampled_from(sorted(STATUS_TYPES))),
    st.tuples(st.just('state'), st.sampled_from('abc'),
              st.sampled_from(['s1', 's2', 's3', None])),
    st.tuples(st.just('get'), st.integers(1, 3), st.none())),
    max_size=80)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(1, 6))
def test_slow_subscriber_converges_to_the_true_state(script, maxsize):
    """Whatever is coalesced, the last word per member is the truth."""
    q = EventQueue(maxsize)
    truth = {}
    state = {}
    seen = {}
    seq = 0

    def apply(model, e):
        kind = model.get(e.member_id, (None, None))[0]
        if isinstance(e, MemberStateChanged):
            model[e.member_id] = (kind, e.new_state)
        else:
            model[e.member_id] = (e.kind, e.report.state)

    for op, member, arg in script:
        seq += 1
        if op == 'get':
            for _ in range(member):
                e = q.get(timeout=0)
                if e is not None:
                    apply(seen, e)
            continue
        if op == 'status':
            e = ev(arg, member, state=state.get(member), seq=seq)
        else:
            if state.get(member) == arg:
                continue
            e = ev('state', member, old=state.get(member), state=arg,
                   seq=seq)
            state[member] = arg
        apply(truth, e)
        q.put(e)
        assert len(q) <= maxsize + 2 * 3   # FIFO + 2 per member
    for e in drain(q):
        apply(seen, e)
    # A member whose only changes cancelled out was never worth telling.
    assert {m: v for m, v in seen.items() if v != (None, None)} == {
        m: v for m, v in truth.items() if v != (None, None)}
    c = q.counters
    assert c.received == c.delivered + c.coalesced


def test_dispatcher_routes_by_group_and_isolates_a_raising_callback():
    d = Dispatcher()
    got_g, got_all = [], []

    def bad(e):
        raise RuntimeError('subscriber bug')

    subs = [Subscription('g', got_g.append, 10),
            Subscription('g', bad, 10),
            Subscription(None, got_all.append, 10)]
    for s in subs:
        d.add(s)
    d.dispatch([ev('up', 'a'), ev('up', 'x', group='other'),
                ev('down', 'a')])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
            len(got_g) < 2 or len(got_all) < 3
            or subs[1].callback_errors < 2):
        time.sleep(0.01)
    d.close()
    assert [e.kind for e in got_g] == ['up', 'down']
    # The Down of 'a' goes first, taking the earlier Up of 'a' along.
    assert [e.member_id for e in got_all] == ['a', 'a', 'x']
    assert subs[1].callback_errors == 2
    assert not any(s.active for s in subs)


def test_subscription_iterates_until_cancelled():
    sub = Subscription('g', None, 10)
    d = Dispatcher()
    d.add(sub)
    d.dispatch([ev('joined', 'a'), ev('up', 'a')])
    it = iter(sub)
    assert next(it).kind == 'joined'
    assert next(it).kind == 'up'
    threading.Timer(0.05, sub.cancel).start()
    assert list(it) == []
    assert d.subscriptions == [sub]   # removal is the monitor's business


def test_callback_subscription_cannot_be_iterated():
    sub = Subscription('g', print, 10)
    with pytest.raises(TypeError):
        sub.get(timeout=0)
