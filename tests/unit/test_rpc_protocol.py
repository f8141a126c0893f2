"""Frame codec and dispatcher: round trips, errors, and fuzzing."""

import json

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker.dispatcher import Method
from heartbeat.broker.dispatcher import Param
from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat import exception


def make_dispatcher():
    calls = []

    def echo(value, times=1):
        calls.append(value)
        return [value] * times

    def fail():
        raise exception.StorageError('storage gone; check the mount')

    def buggy():
        return {}['missing']

    def unencodable():
        return object()

    return calls, Dispatcher({
        'echo': Method(echo, {'value': Param((str, int, type(None)),
                                             required=True),
                              'times': Param(int)}),
        'fail': Method(fail),
        'buggy': Method(buggy),
        'unencodable': Method(unencodable),
    })


def response_of(frame):
    frames = protocol.FrameDecoder().feed(frame)
    assert len(frames) == 1
    assert frames[0].kind == protocol.RESPONSE
    return protocol.decode_response(frames[0].body)


def test_request_round_trip_through_decoder():
    frame = protocol.request(7, 'echo', {'value': 'x'})
    frames = protocol.FrameDecoder().feed(frame)
    assert [f.kind for f in frames] == [protocol.REQUEST]
    assert json.loads(frames[0].body) == {'id': 7, 'method': 'echo',
                                          'args': {'value': 'x'}}


def test_decoder_waits_for_whole_frames_byte_by_byte():
    data = (protocol.request(1, 'a', {}) + protocol.request(2, 'b', {'k': 1}))
    decoder = protocol.FrameDecoder()
    got = []
    for i in range(len(data)):
        got.extend(decoder.feed(data[i:i + 1]))
    assert [json.loads(f.body)['id'] for f in got] == [1, 2]
    assert decoder.pending == 0


@pytest.mark.parametrize('header, reason', [
    (b'XXXX\x01\x00\x00\x00\x00\x00', 'magic'),
    (b'HBRP\x09\x00\x00\x00\x00\x00', 'version'),
    (b'HBRP\x01\x07\x00\x00\x00\x00', 'kind'),
    (b'HBRP\x01\x00\x7f\x00\x00\x00', 'exceeds'),
])
def test_untrusted_headers_raise_protocol_error(header, reason):
    with pytest.raises(errors.ProtocolError, match=reason):
        protocol.FrameDecoder().feed(header)


def test_dispatch_success_and_ids():
    calls, disp = make_dispatcher()
    resp = response_of(disp.dispatch(json.dumps(
        {'id': 41, 'method': 'echo', 'args': {'value': 3, 'times': 2}}
    ).encode()))
    assert resp.call_id == 41 and resp.value() == [3, 3]
    assert calls == [3]


@pytest.mark.parametrize('body, kind', [
    (b'not json', 'BadRequest'),
    (b'[1, 2]', 'BadRequest'),
    (b'{"id": "x", "method": "echo"}', 'BadRequest'),
    (b'{"id": 1, "method": 5}', 'BadRequest'),
    (b'{"id": 1, "method": "nope"}', 'UnknownMethod'),
    (b'{"id": 1, "method": "echo"}', 'BadArguments'),
    (b'{"id": 1, "method": "echo", "args": []}', 'BadArguments'),
    (b'{"id": 1, "method": "echo", "args": {"value": 1.5}}', 'BadArguments'),
    (b'{"id": 1, "method": "echo", "args": {"value": 1, "x": 1}}',
     'BadArguments'),
    (b'{"id": 1, "method": "echo", "args": {"value": true}}', 'BadArguments'),
    (b'{"id": 1, "method": "fail"}', 'StorageError'),
    (b'{"id": 1, "method": "buggy"}', 'InternalError'),
    (b'{"id": 1, "method": "unencodable"}', 'InternalError'),
])
def test_dispatch_errors_become_error_replies(body, kind):
    _, disp = make_dispatcher()
    resp = response_of(disp.dispatch(body))
    assert not resp.ok
    assert resp.error_type == kind
    with pytest.raises(errors.RemoteError) as info:
        resp.value()
    assert info.value.kind == kind


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_crash_the_decoder(data):
    decoder = protocol.FrameDecoder(max_frame=4096)
    try:
        frames = decoder.feed(data)
    except errors.ProtocolError:
        return
    for frame in frames:
        assert frame.kind in protocol.KINDS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(
    lambda v: json.dumps(v).encode()) | st.fixed_dictionaries({
        'id': json_values, 'method': st.sampled_from(
            ['echo', 'fail', 'buggy', 'nope']) | json_values,
        'args': json_values}).map(lambda v: json.dumps(v).encode()))
def test_fuzz_dispatcher_always_answers_with_one_response(body):
    _, disp = make_dispatcher()
    resp = response_of(disp.dispatch(body))
    assert resp.ok or resp.error_type


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.data())
def test_fuzz_truncated_frames_yield_nothing_until_complete(cut, data):
    frame = protocol.request(5, 'echo', {'value': 'x' * cut})
    split = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    decoder = protocol.FrameDecoder()
    assert decoder.feed(frame[:split]) == []
    frames = decoder.feed(frame[split:])
    assert len(frames) == 1
