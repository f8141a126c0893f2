"""heartbeat-status --watch output: one line (or JSON object) per event."""

import json

from heartbeat.cmd import status
from heartbeat.model import InvalidRecord
from heartbeat.model import Member
from heartbeat.model import MemberDown
from heartbeat.model import MemberJoined
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status

WALL = 1_767_225_600.25   # 2026-01-01T00:00:00.250Z


def common(state='ready', replay=False):
    return dict(group='g', member_id='m1', observed_at=5.0,
                observed_wall=WALL, replay=replay,
                report=Report(member_id='m1', group='g', seq=7,
                              incarnation=3, state=state, score=10,
                              location='slot 1'))


def test_event_dict_is_json_with_kind_specific_fields():
    down = status.event_dict(MemberDown(reason='no new report for 1.0s',
                                        **common()))
    assert json.loads(json.dumps(down)) == {
        'event': 'down', 'group': 'g', 'member_id': 'm1',
        'time': '2026-01-01T00:00:00.250Z', 'replay': False,
        'state': 'ready', 'score': 10, 'seq': 7, 'incarnation': 3,
        'location': 'slot 1', 'reason': 'no new report for 1.0s'}
    left = status.event_dict(MemberLeft(clean=False, **common()))
    assert left['event'] == 'left' and left['clean'] is False
    change = status.event_dict(MemberStateChanged(
        old_state='a', new_state='b', **common(state='b')))
    assert (change['old_state'], change['new_state']) == ('a', 'b')
    assert 'reason' not in change and 'clean' not in change


def test_event_line():
    line = status.event_line(MemberJoined(**common(replay=True)))
    assert line == ('2026-01-01T00:00:00.250Z  g/m1  joined  state=ready  '
                    '[current]')
    line = status.event_line(MemberStateChanged(old_state=None,
                                                new_state='b', **common()))
    assert line.endswith('g/m1  state_changed  - -> b')
    line = status.event_line(MemberDown(reason='why', **common(state=None)))
    assert line.endswith('down  state=-  (why)')
    line = status.event_line(MemberLeft(clean=False, **common()))
    assert line.endswith('left  state=ready  (record gone)')


def test_unreadable_records_of_shown_members_are_not_rows_again():
    def member(mid, location):
        report = Report(member_id=mid, group='g', seq=1, incarnation=1,
                        location=location)
        return Member(member_id=mid, group='g', status=Status.UP,
                      report=report, last_change=0.0, last_change_age=0.0,
                      last_change_wall=WALL)

    # A key-value backend names the member of a bad record: shown already
    # when it is a member row, a row of its own when it is not.
    members = [member('m1', 'redis g'), member('m2', 'redis g')]
    bad = [InvalidRecord('redis g/m1', 'x', ('g', 'm1')),
           InvalidRecord('redis g/m9', 'y', ('g', 'm9'))]
    got = status.unaccounted(Snapshot((), tuple(bad)), members)
    assert [rec.location for rec in got] == ['redis g/m9']
    # A storage slot names no member: its location says whose it was.
    slots = [member('m1', 'slot 1')]
    bad = [InvalidRecord('slot 1', 'crc'), InvalidRecord('slot 5', 'crc')]
    got = status.unaccounted(Snapshot((), tuple(bad)), slots)
    assert [rec.location for rec in got] == ['slot 5']
