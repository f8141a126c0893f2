"""The deadline heap and the O(changes) fold, against simple references.

The updater no longer walks every member on every cycle: deadlines sit in
a lazy min-heap and incremental reads touch only what they list.  These
tests check that nothing observable changed: members go down at their own
deadline (not earlier when they beat since they were queued), unchanged
members of incremental reads stay, and every event matches a reference
that judges every member on every step, the straightforward way.
"""

import random

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from heartbeat.model import InvalidRecord
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.deadlines import Deadlines
from heartbeat.monitor.deadlines import QueuedEntry as Entry
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater
from heartbeat import suspicion

DOWN = 1.0
WALL = 1_700_000_000.0


def rep(member, seq, inc=1, group='g', location=None, left=False):
    return Report(member_id=member, group=group, seq=seq, incarnation=inc,
                  left=left, location=location or 'loc %s' % member)


class Observer:
    """An updater fed incremental reads on a fake clock."""

    def __init__(self, down=DOWN, phi=None):
        self.repo = Repository(down, wall_clock=lambda: WALL,
                               phi_threshold=phi)
        self.updater = Updater(self.repo)
        self.now = 0.0

    def read(self, *reports, complete=False, gone=(), invalid=(), at=None):
        if at is not None:
            self.now = at
        snap = Snapshot(tuple(reports), tuple(invalid), complete=complete,
                        gone=tuple(gone))
        events = self.updater.apply(snap, self.now, WALL, 'g')
        return [(e.kind, e.member_id) for e in events] + self.tick(self.now)

    def tick(self, at):
        self.now = at
        return [(e.kind, e.member_id)
                for e in self.updater.expire(at, WALL, ['g'])]


# -- the heap itself -------------------------------------------------------

def test_heap_orders_entries_by_key_per_group():
    heap = Deadlines()
    order = list(range(50))
    random.Random(7).shuffle(order)
    entries = {}
    for i in order:
        for group in ('a', 'b'):
            entry = entries[group, i] = Entry(rep('%s%02d' % (group, i), 1,
                                                  group=group), 0.0)
            heap.push(group, entry, float(i))
    assert len(heap) == 100
    popped = [heap.pop('a').report.member_id for _ in range(25)]
    assert popped == ['a%02d' % i for i in range(25)]
    # Unqueued entries say so; queued ones keep their key.
    assert all(entries['a', i].scheduled is None for i in range(25))
    assert entries['a', 25].scheduled == 25.0
    assert heap.first('a') is entries['a', 25]
    assert heap.first('b') is entries['b', 0]   # other groups untouched
    # Queued again later in place: the next one comes first.
    heap.requeue_first('a', 30.5)
    assert heap.first('a') is entries['a', 26]
    keys = []
    while heap.first('a') is not None:
        keys.append(heap.pop('a').scheduled)
    assert keys == [None] * 25
    assert entries['a', 25].scheduled is None
    heap.forget('b')
    assert heap.groups() == [] and len(heap) == 0
    assert entries['b', 3].scheduled is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(['push', 'pop', 'requeue']),
                          st.integers(0, 40)), max_size=120))
def test_queue_always_yields_the_earliest_key(ops):
    # Keys mostly in time order (the FIFO) and some older (the heap).
    queue = Deadlines()
    queued = {}
    made = 0
    for op, value in ops:
        first = queue.first('g')
        if queued:
            assert first is not None
            assert first.scheduled == min(queued.values())
        else:
            assert first is None
        if op == 'push' or not queued:
            entry = Entry(rep('m%d' % made, 1), 0.0)
            made += 1
            queue.push('g', entry, float(value))
            queued[entry.report.member_id] = float(value)
        elif op == 'pop':
            entry = queue.pop('g')
            assert entry.scheduled is None
            del queued[entry.report.member_id]
        else:
            later = first.scheduled + value / 4
            queue.requeue_first('g', later)
            assert first.scheduled == later
            queued[first.report.member_id] = later
        assert len(queue) == len(queued)
    popped = []
    while queue.first('g') is not None:
        before = queue.first('g').scheduled
        popped.append(before)
        queue.pop('g')
    assert popped == sorted(queued.values())


# -- deadlines of members --------------------------------------------------

def test_member_whose_deadline_moved_is_not_expired_early():
    o = Observer()
    assert o.read(rep('m1', 1), at=100.0) == [('joined', 'm1')]
    assert o.read(rep('m1', 2), at=100.1) == [('up', 'm1')]
    # Queued with its first deadline (101.0); then it kept beating.
    for i, at in enumerate((100.4, 100.7, 100.9)):
        assert o.read(rep('m1', 3 + i), at=at) == []
    assert o.tick(101.0) == []
    assert o.tick(101.1) == []
    assert o.updater.next_deadline(['g']) == 100.9 + DOWN
    assert o.tick(101.89) == []
    assert o.tick(101.9) == [('down', 'm1')]
    assert o.repo.member('g', 'm1', o.now).status is Status.DOWN
    assert o.updater.next_deadline(['g']) is None


def test_beats_do_not_grow_the_heap():
    o = Observer()
    members = ['m%d' % i for i in range(100)]
    o.read(*[rep(m, 1) for m in members], complete=True, at=0.0)
    for step in range(1, 200):
        o.read(*[rep(m, step + 1) for m in members], at=step * 0.3)
    # One item per member that can still go down, whatever the beats.
    assert len(o.updater.deadlines) <= len(members)
    assert sorted(o.tick(199 * 0.3 + DOWN)) == sorted(
        ('down', m) for m in members)
    assert len(o.updater.deadlines) == 0


def test_many_members_go_down_each_at_its_own_deadline():
    down = 4.0
    o = Observer(down=down)
    n, step = 300, 0.005
    names = ['m%03d' % i for i in range(n)]
    o.read(*[rep(m, 1) for m in names], complete=True, at=0.0)
    # Member i beats once more at tick 2 + 2i (all within service_down_time
    # of first sight), then stops; a read and a deadline check every tick.
    last_beat = {names[i]: (2 + 2 * i) * step for i in range(n)}
    downs = {}
    for tick in range(1, 2 * n + int(2 * down / step)):
        now = tick * step
        beating = [rep(names[(tick - 2) // 2], 2)] if (
            tick >= 2 and tick % 2 == 0 and (tick - 2) // 2 < n) else []
        for kind, member in o.read(*beating, at=now):
            if kind == 'down':
                assert member not in downs
                downs[member] = tick
    assert set(downs) == set(names)
    for member, tick in downs.items():
        # Not before its deadline, and at the first tick at or after it.
        assert tick * step - last_beat[member] >= down
        assert (tick - 1) * step - last_beat[member] < down


def test_next_deadline_is_exact_before_the_horizon_only():
    o = Observer()
    o.read(rep('a', 1), rep('b', 1), complete=True, at=0.0)
    o.read(rep('a', 2), rep('b', 2), at=0.5)
    o.read(rep('a', 3), at=0.8)                # a's deadline moved to 1.8
    # Both were queued at first sight (key 0.0); beyond the horizon the
    # stale item is not looked at: a lower bound no earlier than it.
    early = o.updater.next_deadline(['g'], horizon=0.9)
    assert 0.9 <= early <= 1.5
    assert o.updater.next_deadline(['g'], horizon=5.0) == 1.5
    o.read(rep('b', 3), at=1.0)
    assert o.updater.next_deadline(['g']) == 1.8
    assert o.tick(1.8) == [('down', 'a')]
    assert o.updater.next_deadline(['g'], horizon=1.9) == 2.0


def test_forget_drops_members_and_their_deadlines():
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1), complete=True, at=0.0)
    o.updater.forget('g')
    assert o.repo.entries('g') == {} and len(o.updater.deadlines) == 0
    assert o.tick(10.0) == []


def test_member_removed_and_seen_again_has_one_live_deadline():
    o = Observer()
    o.read(rep('m1', 1), at=0.0)
    o.read(rep('m1', 2), at=0.2)
    assert o.read(gone=[('g', 'm1')], at=0.3) == [('left', 'm1')]
    assert o.read(rep('m1', 1, inc=2), at=0.6) == [('joined', 'm1')]
    assert o.tick(1.2) == []                   # the old item is stale
    assert o.tick(1.6) == [('down', 'm1')]


# -- incremental reads -----------------------------------------------------

def test_incremental_reads_never_drop_unchanged_members():
    o = Observer()
    rnd = random.Random(3)
    members = ['m%03d' % i for i in range(500)]
    seq = dict.fromkeys(members, 1)
    o.read(*[rep(m, 1) for m in members], complete=True, at=0.0)
    reports = {m: o.repo.entry(('g', m)).report for m in members}
    gone = set()
    for step in range(1, 40):
        alive = [m for m in members if m not in gone]
        changed = rnd.sample(alive, 25)
        leaving = rnd.sample([m for m in alive if m not in changed], 1)
        for m in changed:
            seq[m] += 1
        o.read(*[rep(m, seq[m]) for m in changed],
               gone=[('g', m) for m in leaving], at=step * 0.01)
        gone.update(leaving)
        for m in changed:
            reports[m] = o.repo.entry(('g', m)).report
        known = {mid for _, mid in o.repo.keys('g')}
        assert known == set(members) - gone
        for m in known:
            # The report of an unlisted member is the one read last time.
            assert o.repo.entry(('g', m)).report is reports[m]


def test_unreadable_record_in_an_incremental_read_keeps_its_member():
    o = Observer()
    o.read(rep('m1', 1, location='slot 1'), rep('m2', 1, location='slot 2'),
           complete=True, at=0.0)
    o.read(rep('m1', 2, location='slot 1'), rep('m2', 2, location='slot 2'),
           at=0.1)
    bad = InvalidRecord('slot 1', 'CRC mismatch')
    assert o.read(invalid=[bad], gone=[('g', 'm1')], at=0.2) == []
    assert o.repo.invalid_reason(o.repo.entry(('g', 'm1'))) == 'CRC mismatch'
    assert o.read(rep('m2', 3, location='slot 2'), at=1.05) == []
    assert o.read(rep('m2', 4, location='slot 2'), at=1.1) == [
        ('down', 'm1')]
    # The slot is taken over by a new member: the index follows it.
    o.read(rep('m3', 1, location='slot 1'), gone=[('g', 'm1')], at=1.2)
    assert o.repo.entry(('g', 'm1')) is None
    o.read(invalid=[InvalidRecord('slot 1', 'bad magic')], at=1.3)
    assert o.repo.invalid_reason(o.repo.entry(('g', 'm3'))) == 'bad magic'
    assert o.repo.invalid_reason(o.repo.entry(('g', 'm2'))) is None


# -- against a reference that judges everyone every time -------------------

class Reference:
    """Every member judged on every step; events the obvious way.

    With ``phi``, a member is down after the silence at which phi of its
    rhythm (the intervals between its changes) reaches the threshold, if
    that is less than DOWN: computed from suspicion.phi itself.
    """

    def __init__(self, phi=None):
        # id -> [token, last_change, announced, changed, intervals]
        self.members = {}
        self.phi = phi

    def down_after(self, known):
        if self.phi is None:
            return DOWN
        rhythm = suspicion.NO_RHYTHM
        for interval in known[4]:
            rhythm = suspicion.add(rhythm, interval)
        if suspicion.phi(rhythm, 0.0) is None:
            return DOWN
        # The least silence (to 1e-9 s) at which phi reaches the threshold.
        low, high = 0.0, DOWN
        if suspicion.phi(rhythm, high) < self.phi:
            return DOWN
        while high - low > 1e-9:
            mid = (low + high) / 2
            if suspicion.phi(rhythm, mid) >= self.phi:
                high = mid
            else:
                low = mid
        return high

    def beat(self, member, token, now):
        known = self.members.get(member)
        if known is None:
            self.members[member] = [token, now, 'unknown', False, []]
            return [('joined', member)]
        events = []
        if token[0] != known[0][0]:
            events.append(('joined', member))
            known[2] = 'unknown'
        if token != known[0]:
            if known[3]:
                known[4].append(now - known[1])
            known[0], known[1], known[3] = token, now, True
            if known[2] != 'up':
                events.append(('up', member))
                known[2] = 'up'
        return events

    def gone(self, member):
        if self.members.pop(member, None) is None:
            return []
        return [('left', member)]

    def expire(self, now):
        out = []
        for member, known in self.members.items():
            if known[2] in ('unknown', 'up') and (
                    now - known[1] >= self.down_after(known) - 1e-6):
                known[2] = 'down'
                out.append(('down', member))
        return sorted(out)

    def next_deadline(self):
        pending = [known[1] + self.down_after(known)
                   for known in self.members.values()
                   if known[2] in ('unknown', 'up')]
        return min(pending) if pending else None


MEMBERS = ['m%d' % i for i in range(6)]
STEP = st.tuples(
    st.integers(0, 600).map(lambda ms: ms / 1000.0),       # time advance
    st.lists(st.sampled_from(MEMBERS), unique=True),        # beats
    st.lists(st.sampled_from(MEMBERS), unique=True),        # restarts
    st.lists(st.sampled_from(MEMBERS), unique=True),        # gone
    st.one_of(st.none(), st.integers(0, 2000).map(lambda ms: ms / 1000.0)))


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=40), st.sampled_from([None, 1.0, 3.0]))
def test_events_match_a_reference_that_judges_everyone(steps, phi):
    o = Observer(phi=phi)
    ref = Reference(phi)
    tokens = {m: (1, 0) for m in MEMBERS}
    now = 0.0
    removed = 0
    for advance, beats, restarts, gone, horizon in steps:
        now += advance
        reports, expected = [], []
        for member in beats:
            inc, seq = tokens[member]
            tokens[member] = (inc + 1, 0) if member in restarts else (
                inc, seq + 1)
            reports.append(rep(member, tokens[member][1],
                               inc=tokens[member][0]))
            expected += ref.beat(member, tokens[member], now)
        leaving = [m for m in gone if m not in beats]
        for member in leaving:
            removed += member in ref.members
            expected += ref.gone(member)
        snap = Snapshot(tuple(reports), complete=False,
                        gone=tuple(('g', m) for m in leaving))
        got = [(e.kind, e.member_id)
               for e in o.updater.apply(snap, now, WALL, 'g')]
        assert got == expected
        got = sorted((e.kind, e.member_id)
                     for e in o.updater.expire(now, WALL, ['g']))
        assert got == ref.expire(now)
        if horizon is not None:
            exact = ref.next_deadline()
            answer = o.updater.next_deadline(['g'], horizon=now + horizon)
            if exact is not None and exact < now + horizon:
                assert answer == pytest.approx(exact, abs=1e-6)
            else:
                assert answer is None or answer >= now + horizon
                assert exact is None or answer <= exact
        # No item per beat: one per member, plus those of removed members
        # until they come due.
        assert len(o.updater.deadlines) <= len(ref.members) + removed
    assert o.updater.next_deadline(['g']) == pytest.approx(
        ref.next_deadline(), abs=1e-6)


FOLD = st.lists(st.tuples(
    st.integers(0, 3),                  # seq
    st.integers(0, 1),                  # incarnation
    st.booleans(),                      # left
    st.integers(0, 500).map(lambda ms: ms / 1000.0)), min_size=1)


@settings(max_examples=200, deadline=None)
@given(FOLD)
def test_entry_follows_the_liveness_rule(reads):
    """The repository's entry against the rule written out plainly."""
    repo = Repository(DOWN)
    token = None
    last_change = None
    seen_change = False
    now = 0.0
    for seq, inc, left, advance in reads:
        now += advance
        report = rep('m', seq, inc=inc, left=left)
        if token is None:
            last_change = now
        elif (seq, inc) != token:
            last_change, seen_change = now, True
        token = (seq, inc)
        entry, _ = repo.fold(report, now, WALL)
        assert (entry.last_change, entry.changed) == (last_change,
                                                      seen_change)
        for later in (now, now + DOWN / 2, now + DOWN):
            expected = (Status.LEFT if left
                        else Status.DOWN if later - last_change >= DOWN
                        else Status.UP if seen_change else Status.UNKNOWN)
            assert repo.status(entry, later) is expected


def test_opted_in_phi_brings_down_a_silent_regular_member_early():
    o = Observer(down=10.0, phi=3.0)
    for seq in range(12):
        o.read(rep('m1', seq), rep('m2', seq), at=float(seq))
    # m2 keeps beating; m1 falls silent after its beat at 11 s.  Its rhythm
    # (1 s, the deviation floor 0.1 s) puts phi 3 at 11 + 1.306 s.
    assert o.read(rep('m2', 12), at=12.0) == []
    assert o.updater.next_deadline(['g']) == pytest.approx(12.3059, abs=1e-3)
    assert o.tick(12.3) == []
    down = o.updater.expire(12.31, WALL, ['g'])
    assert [(e.kind, e.member_id) for e in down] == [('down', 'm1')]
    assert 'phi_threshold 3' in down[0].reason
    # m2 is judged by its own rhythm, not m1's.
    assert o.tick(13.0) == []
    assert o.tick(13.31) == [('down', 'm2')]
