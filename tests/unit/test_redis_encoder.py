"""The per-member record encoder and the beat's arguments, without redis."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis import scripts
from heartbeat.model import Report

# Values whose equality and JSON text disagree are the interesting ones.
SCALARS = st.one_of(
    st.sampled_from([0, 1, True, False, 1.0, 0.0, -0.0, None, '', 'x',
                     float('nan'), float('inf'), -float('inf')]),
    st.integers(), st.floats(), st.text(max_size=8))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                   st.dictionaries(st.text(max_size=3), SCALARS,
                                   max_size=2))
PAYLOADS = st.dictionaries(st.text(max_size=6), VALUES, max_size=4)
REPORTS = st.builds(
    Report, member_id=st.just('m'), group=st.just('g'),
    seq=st.one_of(st.integers(min_value=0), st.just(True)),
    incarnation=st.one_of(st.integers(), st.just(True)),
    state=st.one_of(st.none(), st.text(max_size=6), st.just(1)),
    score=st.one_of(st.none(), st.integers(), st.just(-0.0), st.just(0.0)),
    payload=PAYLOADS,
    written_at=st.one_of(st.floats(), st.integers(), st.just(-0.0)),
    left=st.one_of(st.booleans(), st.just(1)))


def _report(seq: int, payload: Any = None, **kw: Any) -> Report:
    return Report(member_id='m1', group='g', seq=seq, incarnation=7,
                  state=kw.pop('state', 'ready'), score=3400,
                  payload={'vms': 3} if payload is None else payload,
                  written_at=kw.pop('written_at', 1700000000.25 + seq), **kw)


@settings(max_examples=300, deadline=None)
@given(st.lists(REPORTS, min_size=1, max_size=6))
def test_bytes_always_equal_a_full_encoding(reports: list[Report]) -> None:
    encoder = codec.RecordEncoder()
    last: tuple[Report, object] | None = None
    for report in reports:
        record, token = encoder.encode(report)
        assert record == codec.encode(report)
        if last is not None and token is not None and token is last[1]:
            # Same token: nothing but seq and written_at may differ, or a
            # state change would not be pushed.
            assert codec.state_of(report) == codec.state_of(last[0])
            assert report.incarnation == last[0].incarnation
        last = (report, token)


@settings(max_examples=200, deadline=None)
@given(REPORTS, st.lists(st.integers(min_value=0), min_size=1, max_size=5))
def test_unchanged_state_with_new_seq_and_time(report: Report,
                                               seqs: list[int]) -> None:
    encoder = codec.RecordEncoder()
    encoder.encode(report)
    for i, seq in enumerate(seqs):
        beat = Report(member_id='m', group='g', seq=seq,
                      incarnation=report.incarnation, state=report.state,
                      score=report.score, payload=report.payload,
                      written_at=1700000000.5 + i, left=report.left)
        assert encoder.encode(beat)[0] == codec.encode(beat)


def test_unchanged_parts_are_reused() -> None:
    encoder = codec.RecordEncoder()
    _, token = encoder.encode(_report(1))
    assert token is not None
    second, same = encoder.encode(_report(2))
    assert same is token
    assert json.loads(second)['seq'] == 2
    assert second == codec.encode(_report(2))
    # Any change of state gives another token, a change back too.
    _, busy = encoder.encode(_report(3, state='busy'))
    _, back = encoder.encode(_report(4))
    assert busy is not None and busy is not token
    assert back is not None and back is not busy and back is not token


def test_a_payload_changed_in_place_is_never_stale() -> None:
    encoder = codec.RecordEncoder()
    payload: dict[str, Any] = {'disks': ['sda']}
    encoder.encode(_report(1, payload))
    payload['disks'].append('sdb')
    record, token = encoder.encode(_report(2, payload))
    assert json.loads(record)['data'] == {'disks': ['sda', 'sdb']}
    assert token is None    # nothing kept: the caller compares state_of
    flat: dict[str, Any] = {'vms': 1}
    encoder.encode(_report(3, flat))
    flat['vms'] = 2
    assert json.loads(encoder.encode(_report(4, flat))[0])['data'] == {
        'vms': 2}


def test_equal_values_of_another_type_are_encoded_anew() -> None:
    encoder = codec.RecordEncoder()
    for value, text in ((1, b'"v":1'), (True, b'"v":true'),
                        (1.0, b'"v":1.0'), (1, b'"v":1')):
        assert text in encoder.encode(_report(5, {'v': value}))[0]
    assert b'"v":-0.0' in encoder.encode(_report(6, {'v': -0.0}))[0]
    assert b'"v":0.0' in encoder.encode(_report(7, {'v': 0.0}))[0]


def test_state_change_and_times_that_json_spells_differently() -> None:
    encoder = codec.RecordEncoder()
    encoder.encode(_report(1))
    assert b'"state":"busy"' in encoder.encode(
        _report(2, state='busy'))[0]
    for at in (math.inf, math.nan):
        record, token = encoder.encode(_report(3, written_at=at))
        assert record == codec.encode(_report(3, written_at=at))
        assert token is None


def test_publish_flag() -> None:
    assert scripts.publish_flag(leave=False, changed=False) is None
    assert scripts.publish_flag(leave=False, changed=True) == (
        scripts.CHANGED)
    assert scripts.publish_flag(leave=True, changed=False) == scripts.LEAVE
    assert scripts.publish_flag(leave=True, changed=True) == scripts.LEAVE
    # The script tests the leave flag by this letter.
    assert scripts.LEAVE == b'l'
    assert "flag == 'l'" in scripts.PUBLISH.source


def test_publish_args_send_names_only_with_a_change() -> None:
    keys = codec.Keys('hb', 'grp')
    args = codec.PublishArgs.of(keys, 'mé', 'host:1:ab')
    # A plain beat carries its seq and nothing of the record; the meta
    # key, the script's one key, routes it to the group's shard.
    assert args.beat(41, b'{}', None) == [b'hb:v2:{grp}:meta',
                                          b'hb:v2:{grp}:', 'mé'.encode(),
                                          b'host:1:ab', b'41']
    assert args.beat(42, b'{}', scripts.LEAVE) == [
        b'hb:v2:{grp}:meta', b'hb:v2:{grp}:', 'mé'.encode(), b'host:1:ab',
        b'42', b'{}', b'l', b'hb:v2', b'grp']
    # The script derives key names from the base as Keys does.
    assert keys.all() == [keys.base + what for what in (
        'reports', 'live', 'gone', 'meta', 'owners')]
    assert [keys.index, keys.seqs] == [keys.base + 'index',
                                       keys.base + 'seqs']


def test_scripts_are_named_by_the_sha1_of_their_source() -> None:
    for script in scripts.ALL:
        digest = hashlib.sha1(script.source.encode()).hexdigest()
        assert script.sha == digest
        assert script.sha_bytes == digest.encode()
    assert len({s.sha for s in scripts.ALL}) == len(scripts.ALL)
