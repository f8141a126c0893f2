"""The fault suite's pure parts: rows, the table, JSON, percentiles, and
the RPC frame fuzzer (no server needed)."""

import json
import math

from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat.testing import faultsuite
from heartbeat.testing.rpcfuzz import FrameFuzzer


def test_table_has_a_row_per_fault_and_says_which_failed():
    suite = faultsuite.FaultSuite()
    suite.record('redis SIGSTOP', 'paused 2 s', {'false_down': 0,
                                                 'p99_ms': 1.23456},
                 'false_down == 0', True)
    suite.record('etcd kill -9', 'x' * 200, {'up_s': 2.5}, 'up <= 0.55 s',
                 False)
    lines = suite.table().splitlines()
    assert len(lines) == 2 + 2 + 1
    assert lines[2].startswith('pass | redis SIGSTOP')
    assert 'false_down=0, p99_ms=1.23' in lines[2]
    assert lines[3].startswith('FAIL | etcd kill -9')
    # A long cell is cut, the measurements never are.
    assert 'x' * 60 not in lines[3] and lines[3].endswith('up_s=2.5')
    assert lines[-1].startswith('2 faults, 1 failed')
    assert not suite.passed


def test_json_holds_every_row(tmp_path):
    suite = faultsuite.FaultSuite()
    suite.record('a', 'did a', {'n': 1}, 't', True, seconds=1.234)
    path = tmp_path / 'out.json'
    suite.write_json(str(path))
    data = json.loads(path.read_text())
    assert data['passed'] is True
    assert data['rows'] == [{'name': 'a', 'done': 'did a',
                             'measured': {'n': 1}, 'target': 't',
                             'passed': True, 'seconds': 1.23}]


def test_percentile_is_the_nearest_rank():
    samples = [float(n) for n in range(1, 101)]
    assert faultsuite.percentile(samples, 0.99) == 99.0
    assert faultsuite.percentile(samples, 1.0) == 100.0
    assert faultsuite.percentile([5.0], 0.5) == 5.0
    assert math.isnan(faultsuite.percentile([], 0.5))


def test_fuzzer_is_a_function_of_its_seed_and_covers_every_kind():
    first = FrameFuzzer(3).frames(500)
    assert first == FrameFuzzer(3).frames(500)
    assert first != FrameFuzzer(4).frames(500)
    assert {f.kind for f in first} == {
        'garbage', 'bad header', 'oversized length', 'truncated',
        'bad body', 'bad fields', 'bad args', 'flipped bytes'}


def test_fuzzed_frames_are_refused_or_incomplete_for_the_decoder():
    # Complete frames either fail the header checks or decode to a frame;
    # truncated ones never complete.
    for frame in FrameFuzzer(5).frames(300):
        decoder = protocol.FrameDecoder()
        try:
            decoded = decoder.feed(frame.data)
        except errors.ProtocolError:
            assert frame.complete
            continue
        if not frame.complete:
            assert decoded == []
