"""Fuzzed frames against a broker's RPC socket, for tests.

::

    result = fuzz(broker.socket_path, count=10000, seed=1)
    assert result.unanswered == 0, result

Frames come from :class:`FrameFuzzer`, a pure function of its seed: raw
garbage, bad magic, version or kind, oversized lengths, bodies that are no
JSON or no JSON object, requests with wrong field types, unknown methods
or bad arguments, and valid requests with flipped bytes.  A frame that
ends early (its header promises more) is sent and the connection closed
at once, as a crashing client would.  Each complete frame must get a
response or the connection closed within ``timeout``; otherwise it counts
as unanswered.  Methods that change what the broker protects (leases,
lockspace, maintenance) are never sent intact.
"""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import struct
import time
from typing import Any

from heartbeat.broker import protocol

#: Read-only or harmless methods a fuzzed request may name as they are.
METHODS = ('ping', 'get_status', 'put_state')
#: Frames after which the broker must close the connection (its header
#: cannot be trusted, so nothing after it can be framed).
UNFRAMED = ('garbage', 'bad header', 'oversized length')
#: Odd JSON values for fields and arguments.
ODD: tuple[Any, ...] = (
    None, True, -1, 2 ** 70, 1.5e308, '', 'x' * 300, [], {}, [[[]]],
    {'a': {'b': None}}, '\u0000\ud7ff')


@dataclasses.dataclass(frozen=True)
class Fuzzed:
    """One frame to send; ``complete`` False: close right after it."""

    kind: str
    data: bytes
    complete: bool = True


class FrameFuzzer:
    """Frames of every kind of damage, drawn from ``seed``."""

    def __init__(self, seed: int = 1) -> None:
        self.random = random.Random(seed)
        self._makers = [getattr(self, name) for name in sorted(dir(self))
                        if name.startswith('_make_')]

    def frames(self, count: int) -> list[Fuzzed]:
        return [self.random.choice(self._makers)() for _ in range(count)]

    def _header(self, length: int, magic: bytes = protocol.MAGIC,
                version: int = protocol.VERSION,
                kind: int = protocol.REQUEST) -> bytes:
        return protocol.HEADER.pack(magic, version, kind, length)

    def _bytes(self, most: int) -> bytes:
        return self.random.randbytes(self.random.randint(1, most))

    def _make_garbage(self) -> Fuzzed:
        return Fuzzed('garbage', self._bytes(64) + bytes(10), True)

    def _make_bad_header(self) -> Fuzzed:
        r = self.random
        magic, version, kind = protocol.MAGIC, protocol.VERSION, 0
        which = r.randrange(3)
        if which == 0:
            magic = r.randbytes(4)
        elif which == 1:
            version = r.choice([0, 2, 255])
        else:
            kind = r.choice([2, 7, 255])
        return Fuzzed('bad header', self._header(2, magic, version, kind)
                      + b'{}')

    def _make_oversized(self) -> Fuzzed:
        length = self.random.choice([2 ** 31, 2 ** 32 - 1, 50 * 2 ** 20])
        return Fuzzed('oversized length', self._header(length))

    def _make_truncated(self) -> Fuzzed:
        body = protocol.request(1, 'ping', {})[protocol.HEADER.size:]
        cut = self.random.randint(0, len(body) - 1)
        return Fuzzed('truncated', self._header(len(body)) + body[:cut],
                      complete=False)

    def _make_bad_body(self) -> Fuzzed:
        body = self.random.choice([
            self._bytes(200), b'[1,2]', b'"s"', b'null', b'{', b'\xff\xfe',
            b'[' * 5000 + b']' * 5000, b'{"id":1}', b'NaN'])
        return Fuzzed('bad body', self._header(len(body)) + body)

    def _make_bad_fields(self) -> Fuzzed:
        r = self.random
        obj: dict[str, Any] = {'id': r.choice([*ODD, 1]),
                               'method': r.choice([*ODD, *METHODS,
                                                   'no_such', '__init__']),
                               'args': r.choice([*ODD, {}])}
        for key in r.sample(sorted(obj), r.randrange(2)):
            del obj[key]
        return self._json('bad fields', obj)

    def _make_bad_args(self) -> Fuzzed:
        r = self.random
        args = {r.choice(['state', 'score', 'payload', 'x', '']):
                r.choice(ODD) for _ in range(r.randrange(4))}
        return self._json('bad args', {'id': r.randrange(2 ** 31),
                                       'method': r.choice(METHODS),
                                       'args': args})

    def _make_flipped(self) -> Fuzzed:
        r = self.random
        frame = bytearray(protocol.request(
            r.randrange(2 ** 31), r.choice(METHODS), {}))
        for _ in range(r.randint(1, 3)):
            at = r.randrange(len(frame))
            frame[at] ^= 1 << r.randrange(8)
        head = protocol.HEADER.size
        # A flipped length would leave the frame incomplete: keep it true.
        frame[6:10] = struct.pack('>I', len(frame) - head)
        return Fuzzed('flipped bytes', bytes(frame))

    def _json(self, kind: str, obj: Any) -> Fuzzed:
        body = json.dumps(obj).encode('utf-8', 'surrogatepass')
        return Fuzzed(kind, self._header(len(body)) + body)


@dataclasses.dataclass
class FuzzResult:
    """What the broker did with the fuzzed frames."""

    frames: int = 0
    error_replies: int = 0
    ok_replies: int = 0
    closed: int = 0
    #: Incomplete frames, sent and then closed by the fuzzer.
    abandoned: int = 0
    #: Complete frames neither answered nor closed within the timeout.
    unanswered: int = 0
    slowest_s: float = 0.0
    kinds: dict[str, int] = dataclasses.field(default_factory=dict)


def _answer(sock: socket.socket, timeout: float) -> str:
    """'error', 'ok', 'closed' or 'none' for what ``sock`` receives."""
    decoder = protocol.FrameDecoder()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 'none'
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return 'none'
        except OSError:
            return 'closed'
        if not data:
            return 'closed'
        frames = decoder.feed(data)
        if frames:
            return 'ok' if protocol.decode_response(frames[0].body).ok \
                else 'error'


def fuzz(path: str, count: int, seed: int = 1,
         timeout: float = 2.0) -> FuzzResult:
    """Send ``count`` fuzzed frames to the unix socket ``path``."""
    result = FuzzResult()
    sock: socket.socket | None = None
    for frame in FrameFuzzer(seed).frames(count):
        result.frames += 1
        result.kinds[frame.kind] = result.kinds.get(frame.kind, 0) + 1
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
        start = time.monotonic()
        try:
            sock.sendall(frame.data)
        except OSError:
            outcome = 'closed'
        else:
            outcome = _answer(sock, timeout) if frame.complete else 'gone'
        result.slowest_s = max(result.slowest_s, time.monotonic() - start)
        if outcome == 'error':
            result.error_replies += 1
        elif outcome == 'ok':
            result.ok_replies += 1
        else:
            result.closed += outcome == 'closed'
            result.abandoned += outcome == 'gone'
            result.unanswered += outcome == 'none'
        if outcome not in ('ok', 'error') or frame.kind in UNFRAMED:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    return result
