"""The monitor when the backend tells liveness on its own clock (Beats)."""

from heartbeat.model import Beats
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater

DOWN = 1.0
WALL = 1_700_000_000.0


def rep(member, seq=1, state='ok', inc=1, left=False):
    return Report(member_id=member, group='g', seq=seq, incarnation=inc,
                  state=state, left=left)


class Observer:
    """An updater fed told reads on a fake clock."""

    def __init__(self):
        self.now = 100.0
        self.repo = Repository(DOWN, wall_clock=lambda: WALL)
        self.updater = Updater(self.repo)

    def read(self, *reports, ages=None, at=None, complete=False):
        if at is not None:
            self.now = at
        snap = Snapshot(tuple(reports), complete=complete,
                        beats=Beats({'g': dict(ages or {})}))
        new = self.updater.apply(snap, self.now, WALL + self.now, 'g')
        new += self.updater.expire(self.now, WALL + self.now, ['g'])
        return [(e.kind, e.member_id) for e in new]

    def tick(self, at):
        self.now = at
        return [(e.kind, e.member_id)
                for e in self.updater.expire(at, WALL + at, ['g'])]

    def status(self, member):
        return self.repo.member('g', member, self.now).status


def test_first_read_judges_at_once_by_the_told_age():
    obs = Observer()
    assert obs.read(rep('m1'), rep('m2'), ages={'m1': 0.1, 'm2': 5.0},
                    complete=True) == [('joined', 'm1'), ('up', 'm1'),
                                       ('joined', 'm2'), ('down', 'm2')]
    assert obs.status('m1') is Status.UP
    assert obs.status('m2') is Status.DOWN


def test_unnamed_members_stay_as_told_and_cost_no_deadline():
    obs = Observer()
    obs.read(rep('m1'), ages={'m1': 0.0}, complete=True)
    # Reads that name nobody keep m1 up long past its own deadline.
    for at in (100.5, 101.0, 101.5, 105.0):
        assert obs.read(at=at) == []
        assert obs.status('m1') is Status.UP
    assert len(obs.updater.deadlines) == 0


def test_told_stale_is_down_and_told_fresh_again_is_up():
    obs = Observer()
    obs.read(rep('m1'), ages={'m1': 0.0}, complete=True)
    events = obs.read(ages={'m1': 1.2}, at=101.0)
    assert events == [('down', 'm1')]
    member = obs.repo.member('g', 'm1', obs.now)
    assert abs(member.last_change_age - 1.2) < 1e-9
    assert member.suspicion is None
    assert obs.read(ages={'m1': 0.1}, at=102.0) == [('up', 'm1')]


def test_a_stale_age_in_a_report_is_down_not_up():
    obs = Observer()
    obs.read(rep('m1'), ages={'m1': 0.0}, complete=True)
    assert obs.read(rep('m1', 2, state='x'), ages={'m1': 3.0},
                    at=101.0) == [('state_changed', 'm1'), ('down', 'm1')]


def test_group_not_read_for_down_time_goes_down_then_up_when_read():
    obs = Observer()
    obs.read(rep('m1'), rep('m2'), ages={'m1': 0.0, 'm2': 0.0},
             complete=True)
    assert obs.updater.next_deadline(['g']) == 100.0 + DOWN
    assert obs.tick(100.9) == []
    events = obs.updater.expire(101.0, WALL, ['g'])
    assert sorted((e.kind, e.member_id) for e in events) == [
        ('down', 'm1'), ('down', 'm2')]
    assert 'not read' in events[0].reason
    assert obs.tick(102.0) == []   # once, not at every check
    # The next read vouches for both again, though it names neither.
    assert sorted(obs.read(at=102.5)) == [('up', 'm1'), ('up', 'm2')]


def test_leave_is_left_and_a_later_stale_age_changes_nothing():
    obs = Observer()
    obs.read(rep('m1'), ages={'m1': 0.0}, complete=True)
    assert obs.read(rep('m1', 2, left=True), ages={'m1': 0.0},
                    at=100.5) == [('left', 'm1')]
    assert obs.read(ages={'m1': 1.5}, at=101.5) == []
    assert obs.status('m1') is Status.LEFT


def test_unwatched_apply_folds_the_ages_too():
    repo = Repository(DOWN, wall_clock=lambda: WALL)
    repo.apply(Snapshot((rep('m1'),), beats=Beats({'g': {'m1': 2.0}})),
               100.0, 'g')
    assert repo.member('g', 'm1', 100.0).status is Status.DOWN
