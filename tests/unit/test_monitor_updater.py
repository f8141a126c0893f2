"""The updater's diff logic, driven by a fake observer clock."""

import pytest

from heartbeat.model import InvalidRecord
from heartbeat.model import MemberDown
from heartbeat.model import MemberJoined
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater

DOWN = 1.0
WALL = 1_700_000_000.0


def rep(member, seq, inc=1, state=None, left=False, group='g', slot=None):
    return Report(member_id=member, group=group, seq=seq, incarnation=inc,
                  state=state, left=left,
                  location='slot %d' % (slot or int(member[1:])))


def picture(o, group='g'):
    """The replay events of the whole picture of ``group``, in order."""
    keys = [(grp, mid) for grp, ids in o.updater.picture_ids(group)
            for mid in ids]
    return o.updater.describe(keys, o.now, WALL)


class Observer:
    """An updater plus a fake clock; read() and tick() return event kinds."""

    def __init__(self, down=DOWN):
        self.now = 100.0
        self.repo = Repository(down, wall_clock=lambda: WALL)
        self.updater = Updater(self.repo)
        self.events = []

    def read(self, *reports, invalid=(), at=None, complete=True, gone=(),
             group='g'):
        if at is not None:
            self.now = at
        snap = Snapshot(tuple(reports), tuple(invalid), complete=complete,
                        gone=tuple(gone))
        new = self.updater.apply(snap, self.now, WALL + self.now, group)
        new += self.updater.expire(self.now, WALL + self.now, [group])
        self.events += new
        return [(e.kind, e.member_id) for e in new]

    def tick(self, at):
        self.now = at
        new = self.updater.expire(self.now, WALL + self.now, ['g'])
        self.events += new
        return [(e.kind, e.member_id) for e in new]

    def status(self, member):
        return self.repo.member('g', member, self.now).status


def test_first_sight_is_joined_then_up_on_change():
    o = Observer()
    assert o.read(rep('m1', 5)) == [('joined', 'm1')]
    assert o.status('m1') is Status.UNKNOWN
    assert o.read(rep('m1', 5), at=100.3) == []
    assert o.read(rep('m1', 6), at=100.5) == [('up', 'm1')]
    assert o.read(rep('m1', 7), at=100.7) == []
    joined = o.events[0]
    assert isinstance(joined, MemberJoined)
    assert joined.observed_at == 100.0
    assert joined.observed_wall == WALL + 100.0
    assert joined.report.seq == 5
    assert not joined.replay


def test_member_that_stops_beating_goes_down_at_its_deadline():
    o = Observer()
    o.read(rep('m1', 1))
    o.read(rep('m1', 2), at=100.2)
    assert o.updater.next_deadline(['g']) == 100.2 + DOWN
    assert o.tick(101.1) == []
    assert o.read(rep('m1', 2), at=101.19) == []
    assert o.tick(101.2) == [('down', 'm1')]
    down = o.events[-1]
    assert isinstance(down, MemberDown)
    assert 'no new report for 1.0s' in down.reason
    # Announced once; no further deadline for a member that is down.
    assert o.tick(105.0) == []
    assert o.updater.next_deadline(['g']) is None


def test_never_changing_member_goes_down_after_first_sight():
    o = Observer()
    assert o.read(rep('m1', 9)) == [('joined', 'm1')]
    assert o.tick(100.99) == []
    assert o.tick(101.0) == [('down', 'm1')]


def test_down_member_that_beats_again_is_up():
    o = Observer()
    o.read(rep('m1', 1))
    o.read(rep('m1', 2), at=100.1)
    o.tick(102.0)
    assert o.read(rep('m1', 3), at=102.1) == [('up', 'm1')]
    assert o.status('m1') is Status.UP


def test_clean_leave_is_left_not_down():
    o = Observer()
    o.read(rep('m1', 1))
    o.read(rep('m1', 2), at=100.1)
    assert o.read(rep('m1', 3, left=True), at=100.2) == [('left', 'm1')]
    left = o.events[-1]
    assert isinstance(left, MemberLeft) and left.clean
    assert o.status('m1') is Status.LEFT
    assert o.tick(110.0) == []
    assert o.updater.next_deadline(['g']) is None


def test_down_member_that_leaves_cleanly_is_left():
    o = Observer()
    o.read(rep('m1', 1))
    o.read(rep('m1', 2), at=100.1)
    assert o.tick(101.5) == [('down', 'm1')]
    assert o.read(rep('m1', 3, left=True), at=101.6) == [('left', 'm1')]


def test_restart_with_lower_seq_is_a_new_incarnation():
    o = Observer()
    o.read(rep('m1', 40, inc=7))
    o.read(rep('m1', 41, inc=7), at=100.1)
    # Restarted quickly: seq went down, incarnation changed.
    assert o.read(rep('m1', 1, inc=8), at=100.2) == [('joined', 'm1'),
                                                     ('up', 'm1')]
    assert o.status('m1') is Status.UP
    assert o.repo.member('g', 'm1', o.now).report.seq == 1


def test_killed_then_restarted_member_goes_down_then_joined_and_up():
    o = Observer()
    o.read(rep('m1', 1, inc=1))
    o.read(rep('m1', 2, inc=1), at=100.1)
    assert o.read(rep('m1', 2, inc=1), at=101.2) == [('down', 'm1')]
    assert o.read(rep('m1', 1, inc=2), at=103.0) == [('joined', 'm1'),
                                                     ('up', 'm1')]


def test_rejoin_after_clean_leave():
    o = Observer()
    o.read(rep('m1', 1, inc=1))
    o.read(rep('m1', 2, inc=1, left=True), at=100.1)
    assert o.read(rep('m1', 1, inc=2), at=100.5) == [('joined', 'm1'),
                                                     ('up', 'm1')]


def test_member_first_seen_after_it_left_is_not_announced():
    o = Observer()
    assert o.read(rep('m1', 3, left=True)) == []
    assert o.status('m1') is Status.LEFT
    assert picture(o) == []


def test_state_change_carries_old_and_new_state():
    o = Observer()
    o.read(rep('m1', 1, state='booting'))
    assert o.read(rep('m1', 2, state='enabled'), at=100.1) == [
        ('up', 'm1'), ('state_changed', 'm1')]
    change = o.events[-1]
    assert isinstance(change, MemberStateChanged)
    assert (change.old_state, change.new_state) == ('booting', 'enabled')
    assert change.report.state == 'enabled'
    assert o.read(rep('m1', 3, state='enabled'), at=100.2) == []
    assert o.read(rep('m1', 4, state=None), at=100.3) == [
        ('state_changed', 'm1')]
    assert o.events[-1].new_state is None


def test_slot_turning_invalid_keeps_member_until_its_deadline():
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1))
    o.read(rep('m1', 2), rep('m2', 2), at=100.1)
    bad = InvalidRecord('slot 1', 'CRC mismatch')
    # No event at once: one bad read is not a verdict.
    assert o.read(rep('m2', 3), invalid=[bad], at=100.2) == []
    assert o.repo.member('g', 'm1', o.now).invalid_reason == 'CRC mismatch'
    assert o.read(rep('m2', 4), invalid=[bad], at=100.6) == []
    assert o.read(rep('m2', 5), invalid=[bad], at=101.1) == [('down', 'm1')]
    down = o.events[-1]
    assert 'record unreadable (CRC mismatch)' in down.reason
    # The slot heals with a new report: the member is up again.
    assert o.read(rep('m1', 3), rep('m2', 6), at=101.2) == [('up', 'm1')]
    assert o.repo.member('g', 'm1', o.now).invalid_reason is None


def test_record_of_a_down_member_that_disappears_is_left_unclean():
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1))
    o.read(rep('m2', 2), at=100.1)
    assert o.read(rep('m1', 1), rep('m2', 3), at=101.0) == [('down', 'm1')]
    assert o.read(rep('m2', 4), at=101.1) == [('left', 'm1')]
    left = o.events[-1]
    assert isinstance(left, MemberLeft) and not left.clean
    assert o.repo.member('g', 'm1', o.now) is None


def test_record_that_vanishes_while_alive_is_an_outage_not_a_leave():
    # A backend that lost its data (redis restarted without persistence,
    # a ZooKeeper session expired): every record is gone at once.
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1))
    o.read(rep('m1', 2), rep('m2', 2), at=100.2)
    assert o.read(at=100.4) == []
    assert o.repo.entry(('g', 'm1')).vanished
    assert o.status('m1') is Status.UP
    assert o.read(at=100.6) == []
    # Each member rewrites its record at its next beat: no event at all,
    # and the member keeps its history.
    assert o.read(rep('m1', 3), rep('m2', 3), at=100.8) == []
    entry = o.repo.entry(('g', 'm1'))
    assert not entry.vanished and entry.changed
    assert o.status('m2') is Status.UP


def test_record_that_vanishes_and_stays_away_is_down_then_left():
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1))
    o.read(rep('m1', 2), rep('m2', 2), at=100.2)
    assert o.read(rep('m2', 3), at=100.5) == []
    assert o.read(rep('m2', 4), at=101.1) == []
    events = o.read(rep('m2', 5), at=101.2)
    assert events == [('down', 'm1'), ('left', 'm1')]
    down, left = o.events[-2:]
    assert 'record vanished from the backend' in down.reason
    assert isinstance(left, MemberLeft) and not left.clean
    assert o.repo.member('g', 'm1', o.now) is None
    # Back later: a member like any new one.
    assert o.read(rep('m1', 3), rep('m2', 6), at=101.4) == [('joined', 'm1')]


def test_vanished_member_that_restarted_is_joined_again():
    o = Observer()
    o.read(rep('m1', 1))
    o.read(rep('m1', 2), at=100.2)
    assert o.read(at=100.3) == []
    assert o.read(rep('m1', 1, inc=2), at=100.5) == [('joined', 'm1'),
                                                     ('up', 'm1')]
    assert not o.repo.entry(('g', 'm1')).vanished


def test_slot_taken_over_by_another_member():
    o = Observer()
    o.read(rep('m1', 1, slot=1))
    o.read(rep('m1', 2, slot=1, left=True), at=100.1)
    # Another member now writes slot 1: the old one is forgotten quietly.
    assert o.read(rep('m9', 1, slot=1), at=100.2) == [('joined', 'm9')]
    assert o.repo.member('g', 'm1', o.now) is None


def test_incremental_snapshot_changes_only_what_it_lists():
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1), rep('m3', 1))
    assert o.read(rep('m1', 2), complete=False, at=100.1) == [('up', 'm1')]
    assert o.status('m2') is Status.UNKNOWN
    assert o.read(complete=False, gone=[('g', 'm3')], at=100.2) == [
        ('left', 'm3')]
    assert o.repo.member('g', 'm2', o.now) is not None
    assert o.read(complete=False, at=101.05) == [('down', 'm2')]
    assert o.read(complete=False, at=101.1) == [('down', 'm1')]


def test_picture_replays_current_state():
    o = Observer()
    o.read(rep('m1', 1), rep('m2', 1), rep('m3', 1), rep('m4', 1))
    o.read(rep('m1', 2), rep('m2', 1), rep('m3', 1),
           rep('m4', 2, left=True), at=100.5)
    o.read(rep('m1', 3), rep('m2', 1), rep('m3', 2),
           rep('m4', 2, left=True), at=101.2)
    got = [(e.kind, e.member_id, e.replay)
           for e in picture(o)]
    assert got == [('joined', 'm1', True), ('up', 'm1', True),
                   ('joined', 'm2', True), ('down', 'm2', True),
                   ('joined', 'm3', True), ('up', 'm3', True)]


def test_expire_judges_only_the_groups_asked():
    o = Observer()
    o.read(rep('a1', 1, group='a', slot=1), group='a')
    o.read(rep('b1', 1, group='b', slot=2), group='b')
    o.now = 102.0
    assert [e.member_id for e in o.updater.expire(o.now, WALL, ['a'])] == [
        'a1']
    assert [e.member_id for e in o.updater.expire(o.now, WALL, [None])] == [
        'b1']


def test_repository_apply_still_answers_without_an_updater():
    repo = Repository(DOWN)
    seen, vanished = repo.apply(Snapshot((rep('m1', 1), rep('m2', 1))),
                                10.0, 'g')
    assert seen == {('g', 'm1'), ('g', 'm2')} and vanished == set()
    repo.apply(Snapshot((rep('m1', 2),),
                        (InvalidRecord('slot 2', 'bad magic'),)), 10.5, 'g')
    m2 = repo.member('g', 'm2', 10.5)
    assert m2.invalid_reason == 'bad magic'
    assert repo.member('g', 'm1', 10.5).status is Status.UP
    # m2 is down by now, m1 still up: m1 is kept while its deadline
    # stands (its record may come back), m2 is gone.
    seen, vanished = repo.apply(Snapshot(()), 11.0, 'g')
    assert vanished == {('g', 'm2')}
    assert repo.entry(('g', 'm1')).vanished
    seen, vanished = repo.apply(Snapshot(()), 11.5, 'g')
    assert vanished == {('g', 'm1')}
    assert repo.members('g', 11.5) == []


def test_entries_hold_only_what_their_owner_owns():
    plain = Repository(DOWN)
    plain.apply(Snapshot((rep('m1', 1),)), 0.0, 'g')
    entry = plain.entry(('g', 'm1'))
    # An unwatched repository knows nothing of announcements or queues.
    assert not hasattr(entry, 'announced')
    assert not hasattr(entry, 'scheduled')
    # An updater needs a repository of its own from the start.
    with pytest.raises(ValueError, match='repository of its own'):
        Updater(plain)
    watched = Repository(DOWN)
    updater = Updater(watched)
    updater.apply(Snapshot((rep('m1', 1),)), 0.0, 0.0, 'g')
    entry = watched.entry(('g', 'm1'))
    assert entry.announced is Status.UNKNOWN
    assert entry.scheduled == 0.0


def test_unreadable_record_named_by_its_member_in_a_shared_location():
    # A key-value backend: one location per group, the bad record names
    # its member.  Another member read fine at that location does not
    # make the record its own.
    def kv(member, seq):
        return Report(member_id=member, group='g', seq=seq, incarnation=1,
                      location='redis g')

    bad = InvalidRecord('redis g/m1', 'unreadable record: x', ('g', 'm1'))
    for complete in (True, False):
        o = Observer()
        o.read(kv('m1', 1), kv('m2', 1), complete=complete)
        o.read(kv('m1', 2), kv('m2', 2), at=100.1, complete=complete)
        assert o.read(kv('m2', 3), invalid=[bad], at=100.2,
                      complete=complete) == []
        m1 = o.repo.member('g', 'm1', o.now)
        assert m1.invalid_reason == 'unreadable record: x', complete
        assert o.read(kv('m2', 4), invalid=[bad], at=101.1,
                      complete=complete) == [('down', 'm1')]
        assert 'record unreadable' in o.events[-1].reason
        assert o.read(kv('m1', 3), kv('m2', 5), at=101.2,
                      complete=complete) == [('up', 'm1')]
