"""The redis driver's reads without a server: arguments and replies."""

from __future__ import annotations

import json

from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis import reads
from heartbeat.model import InvalidRecord
from heartbeat.model import Report

RECORD = {'seq': 1, 'inc': 7, 'state': 'up', 'score': None, 'data': {},
          'at': 1.5, 'left': False, 'v': 1}


def _part(records: dict[str, object], seqs: dict[str, int],
          ticks: dict[str, int]) -> list[str]:
    return [json.dumps(records), json.dumps(seqs), json.dumps(ticks)]


def test_a_first_read_asks_for_everything_of_its_group() -> None:
    args = reads.snapshot_args('hb', 'g', None, 'E', 60, 3600, 30.0)
    assert args[0] == codec.Keys('hb', 'g').meta
    assert args[reads.FORMAT_ARG] == 'json'
    # full, then service_down_time in us, then the group never read.
    assert args[7:] == ['1', 'json', 30 * reads.US, 'g', -1, -1, '', 0]


def test_an_incremental_read_sends_what_the_cursor_knows() -> None:
    cursor = codec.Cursor({'g': 'E1'}, {'g': 100}, {'g': 40},
                          {'g': frozenset({'m9'})})
    args = reads.snapshot_args('hb', None, cursor, 'E', 0, 3600, 30.0)
    assert args[0] == codec.groups_key('hb')
    assert args[6:8] == ['1', '0']          # discover, not full
    assert args[10:] == ['g', 100, 40, 'E1', 1, 'm9']


def test_a_reply_in_parts_becomes_one_snapshot_with_ages_and_stale() -> None:
    now = 10_000_000
    cutoff = now - 3_000_000
    first = _part({'a': RECORD, 'b': 'not a record'}, {'a': 5, 'b': 1},
                  {'a': now - 1_000_000})
    told = _part({}, {}, {'c': cutoff - 1})
    reply = [0, [['g', '200', str(cutoff), [first, told], ['d'], str(now),
                  'E2']]]
    cursor = codec.Cursor({'g': 'E2'}, {'g': 100}, {'g': 0},
                          {'g': frozenset({'d'})})
    snap = reads.parse_reply(reply, cursor, parsed=True)
    assert not snap.complete
    assert [(r.member_id, r.seq) for r in snap.reports] == [('a', 5)]
    assert isinstance(snap.invalid[0], InvalidRecord)
    assert snap.gone == (('g', 'd'),)
    assert snap.beats is not None
    # Rounded up to the millisecond: c, a microsecond past the cutoff.
    assert snap.beats.ages == {'g': {'a': 1.0, 'c': 3.001}}
    # c is told stale; d, gone, is no longer.
    assert snap.cursor.stale == {'g': frozenset({'c'})}
    assert (snap.cursor.clocks, snap.cursor.epochs) == ({'g': 200},
                                                        {'g': 'E2'})
    assert all(isinstance(r, Report) for r in snap.reports)


def test_ages_are_rounded_up_to_the_millisecond_and_shared() -> None:
    now = 50_000_000
    down = 30_000_000
    stale: set[str] = set()
    # The reports' own id string, another object than the beat's key.
    own = ''.join(['m', '1'])
    ids = {own: own}
    out = codec.ages([('m1', now - down), ('m2', now - down + 1),
                      ('m3', now - 2_000_400), ('m4', now - 2_000_100),
                      ('m5', now + 7)], now, now - down, stale, ids)
    # A tick at the cutoff is exactly service_down_time old, never less:
    # the observer judges it stale as the server's told set does.
    assert out['m1'] == 30.0 and 'm1' in stale
    assert out['m2'] == 30.0 and 'm2' not in stale
    assert out['m3'] == out['m4'] == 2.001
    assert out['m3'] is out['m4']
    assert out['m5'] == 0.0
    assert next(k for k in out if k == 'm1') is own
