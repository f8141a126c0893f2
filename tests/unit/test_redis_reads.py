"""The redis driver's reads without a server: arguments and replies."""

from __future__ import annotations

import json

import hypothesis
from hypothesis import strategies as st

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
    # To the millisecond, away from the cutoff: c is a microsecond below.
    assert snap.beats.ages == {'g': {'a': 1.0, 'c': 3.001}}
    # c is told stale; d, gone, is no longer.
    assert snap.cursor.stale == {'g': frozenset({'c'})}
    assert (snap.cursor.clocks, snap.cursor.epochs) == ({'g': 200},
                                                        {'g': 'E2'})
    assert all(isinstance(r, Report) for r in snap.reports)


def test_ages_are_rounded_away_from_the_cutoff_and_shared() -> None:
    now = 50_000_000
    down = 30_000_000
    stale: set[str] = set()
    # The reports' own id string, another object than the beat's key.
    own = ''.join(['m', '1'])
    ids = {own: own}
    out = codec.ages([('m1', now - down), ('m2', now - down + 1),
                      ('m6', now - down - 1), ('m3', now - 2_000_900),
                      ('m4', now - 2_000_100), ('m5', now + 7)],
                     now, now - down, stale, ids)
    # The age tells the side of the cutoff the server's told set holds:
    # at or below it, service_down_time old or more; above it, less (a
    # microsecond short of it is not rounded up into a false Down).
    assert out['m1'] == 30.0 and 'm1' in stale
    assert out['m6'] == 30.001 and 'm6' in stale
    assert out['m2'] == 29.999 and 'm2' not in stale
    assert out['m3'] == out['m4'] == 2.0
    assert out['m3'] is out['m4']
    assert out['m5'] == 0.0
    assert next(k for k in out if k == 'm1') is own


@hypothesis.given(down_ms=st.integers(1, 600_000),
                  offsets=st.lists(st.integers(-5_000, 5_000), min_size=1,
                                   max_size=20))
def test_an_age_is_down_time_or_more_exactly_when_the_server_says_stale(
        down_ms: int, offsets: list[int]) -> None:
    # What the observer judges from the age (age >= service_down_time)
    # is what the server's told set holds, on either side of the cutoff.
    now = 10 ** 12
    down_us = down_ms * 1000
    stale: set[str] = set()
    beats = [('m%d' % i, now - down_us + off)
             for i, off in enumerate(offsets)]
    out = codec.ages(beats, now, now - down_us, stale)
    for member_id, _ in beats:
        assert (out[member_id] >= down_us / reads.US) == (member_id in stale)
