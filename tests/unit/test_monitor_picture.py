"""A new subscriber's picture: described as taken, within the queue bound."""

import threading

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from heartbeat.model import MemberDown
from heartbeat.model import MemberJoined
from heartbeat.model import MemberLeft
from heartbeat.model import MemberUp
from heartbeat.model import Report
from heartbeat.monitor.eventqueue import EventQueue
from heartbeat.monitor.picture import Picture

KINDS = {'joined': MemberJoined, 'up': MemberUp, 'down': MemberDown,
         'left': MemberLeft}


def event(kind, key, replay=False):
    group, member = key
    report = Report(member_id=member, group=group, seq=1, incarnation=1)
    return KINDS[kind](group=group, member_id=member, report=report,
                       observed_at=0.0, observed_wall=0.0, replay=replay)


class World:
    """What a monitor knows: key -> 'up' or 'down' (absent: gone)."""

    def __init__(self, keys):
        self.truth = {key: 'up' for key in keys}
        self.lock = threading.RLock()
        self.described = []

    def describe(self, keys):
        out = []
        for key in keys:
            status = self.truth.get(key)
            if status is None:
                continue
            self.described.append(key)
            out += [event('joined', key, True), event(status, key, True)]
        return out

    def picture(self):
        groups = sorted({group for group, _ in self.truth})
        return Picture([(g, sorted(m for grp, m in self.truth if grp == g))
                        for g in groups], self.describe, self.lock)

    def change(self, q, key, kind):
        """A change the monitor dispatches (under its lock)."""
        with self.lock:
            if kind == 'left':
                self.truth.pop(key, None)
            else:
                self.truth[key] = kind
            q.put(event(kind, key))


def drain(q):
    out = []
    while (e := q.get(timeout=0)) is not None:
        out.append(e)
    return out


def keys(n, group='g'):
    return [(group, 'm%05d' % i) for i in range(n)]


def test_picture_is_described_as_taken_within_the_bound():
    world = World(keys(5000))
    q = EventQueue(100)
    q.show(world.picture())
    assert len(q) == 0 and q.picture_remaining == 5000
    got = drain(q)
    assert len(got) == 10000 and all(e.replay for e in got)
    assert [(e.kind, e.key) for e in got[:4]] == [
        ('joined', ('g', 'm00000')), ('up', ('g', 'm00000')),
        ('joined', ('g', 'm00001')), ('up', ('g', 'm00001'))]
    assert q.counters.high_water <= 100
    assert q.counters.received == q.counters.delivered == 10000
    assert q.picture_remaining == 0


def test_change_of_a_member_not_described_yet_is_left_to_its_description():
    world = World(keys(10))
    q = EventQueue(4)
    q.show(world.picture())
    world.change(q, ('g', 'm00007'), 'up')   # e.g. a state change
    got = [(e.kind, e.member_id, e.replay) for e in drain(q)]
    assert got.count(('joined', 'm00007', True)) == 1
    assert ('up', 'm00007', False) not in got
    assert q.counters.received == q.counters.delivered + q.counters.coalesced


def test_down_of_a_member_not_described_yet_goes_before_the_picture():
    world = World(keys(1000))
    q = EventQueue(10)
    q.show(world.picture())
    first = q.get(timeout=0)
    assert first.member_id == 'm00000'
    world.change(q, ('g', 'm00900'), 'down')
    got = [(e.kind, e.member_id) for e in drain(q)]
    # What was described already (a batch) goes first, then the Down.
    at = got.index(('joined', 'm00900'))
    assert got[at + 1] == ('down', 'm00900')
    assert at < 10
    assert sum(1 for _, m in got if m == 'm00900') == 2
    assert len(got) == 1999


def test_left_of_a_member_not_described_yet_tells_nothing():
    world = World(keys(100))
    q = EventQueue(10)
    q.show(world.picture())
    world.change(q, ('g', 'm00050'), 'left')
    got = drain(q)
    assert all(e.member_id != 'm00050' for e in got)
    assert len(got) == 198


def test_down_of_a_described_member_takes_its_description_along():
    world = World(keys(100))
    q = EventQueue(10)
    q.show(world.picture())
    assert q.get(timeout=0).key == ('g', 'm00000')
    # m00001 is described (waiting to be delivered); its Down must not
    # overtake its Joined.
    world.change(q, ('g', 'm00001'), 'down')
    got = [(e.kind, e.member_id, e.replay) for e in drain(q)]
    assert got[:3] == [('joined', 'm00001', True), ('up', 'm00001', True),
                       ('down', 'm00001', False)]


def test_changes_of_described_members_do_not_wait_for_the_rest():
    world = World(keys(2000))
    q = EventQueue(10)
    q.show(world.picture())
    assert q.get(timeout=0).member_id == 'm00000'
    drained = [q.get(timeout=0) for _ in range(9)]
    assert all(e.replay for e in drained)
    world.change(q, ('g', 'm00000'), 'up')
    assert q.get(timeout=0).replay is False
    assert q.picture_remaining > 1900


def test_picture_of_every_group_in_group_order():
    world = World(keys(3, 'b') + keys(2, 'a'))
    q = EventQueue(2)
    q.show(world.picture())
    got = [(e.group, e.member_id) for e in drain(q) if e.kind == 'joined']
    assert got == [('a', 'm00000'), ('a', 'm00001'), ('b', 'm00000'),
                   ('b', 'm00001'), ('b', 'm00002')]


def test_close_drops_the_picture():
    world = World(keys(100))
    q = EventQueue(10)
    q.show(world.picture())
    q.close()
    assert q.get(timeout=0) is None and q.picture_remaining == 0


def test_picture_is_described_from_another_thread_without_deadlock():
    world = World(keys(20000))
    q = EventQueue(50)
    q.show(world.picture())
    got = []
    changed = threading.Event()
    reader = threading.Thread(
        target=lambda: got.extend(drain_all(q, changed)))
    reader.start()
    for i in range(0, 20000, 97):
        world.change(q, ('g', 'm%05d' % i), 'down' if i % 2 else 'up')
    changed.set()
    reader.join(30)
    assert not reader.is_alive()
    q.close()
    final = {}
    for e in got:
        final[e.key] = e.kind
    assert {k: v for k, v in final.items() if v != 'joined'} == {
        k: v for k, v in world.truth.items()}


def drain_all(q, changed):
    """Every event, until the changes are made and nothing is left."""
    out = []
    while not changed.is_set() or q.picture_remaining or len(q):
        e = q.get(timeout=0.1)
        if e is not None:
            out.append(e)
    return out


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), maxsize=st.integers(1, 12),
       script=st.lists(st.tuples(st.sampled_from(['get', 'up', 'down',
                                                  'left']),
                                 st.integers(0, 39)), max_size=80))
def test_subscriber_ends_with_the_truth_each_member_joined_first(
        n, maxsize, script):
    world = World(keys(n))
    q = EventQueue(maxsize)
    q.show(world.picture())
    seen = {}
    order_ok = True

    def take(e):
        nonlocal order_ok
        if e.kind == 'joined':
            seen[e.key] = 'joined'
        elif e.key not in seen:
            # An event before the member's Joined: only where the full
            # queue kept the newest status event of the member alone.
            order_ok = order_ok and q.counters.overflows > 0
            if e.kind != 'left':
                seen[e.key] = e.kind
        elif e.kind == 'left':
            del seen[e.key]
        else:
            seen[e.key] = e.kind

    for op, i in script:
        key = ('g', 'm%05d' % (i % n))
        if op == 'get':
            if (e := q.get(timeout=0)) is not None:
                take(e)
        elif op == 'left' or key in world.truth:
            if op == 'left' and key not in world.truth:
                continue
            world.change(q, key, op)
        assert len(q) <= max(maxsize, 2) + 2 * n
    for e in drain(q):
        take(e)
    assert order_ok
    assert seen == world.truth
    c = q.counters
    assert c.received == c.delivered + c.coalesced
