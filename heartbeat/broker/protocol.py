"""Pure encoding of the broker's RPC frames.

Every frame is a 10-byte header and a UTF-8 JSON body::

    offset size field
    0      4    magic b'HBRP'
    4      1    protocol version (1)
    5      1    kind: 0 request, 1 response
    6      4    body length, big endian

A request body is ``{"id": int, "method": str, "args": {...}}``; a response
body is ``{"id": int, "ok": true, "result": ...}`` or ``{"id": int, "ok":
false, "error": {"type": str, "message": str}}``.  A frame whose header is
wrong (foreign magic, other version, oversized) cannot be skipped safely:
the decoder raises :class:`~heartbeat.broker.errors.ProtocolError` and the
connection is closed after an error reply.  A frame whose body is wrong is
answered with an error and the connection carries on.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

from heartbeat.broker import errors

MAGIC = b'HBRP'
VERSION = 1
HEADER = struct.Struct('>4sBBI')
REQUEST = 0
RESPONSE = 1
KINDS = (REQUEST, RESPONSE)
DEFAULT_MAX_FRAME = 1024 * 1024

#: The RPC methods that may safely run twice for one call.  The client
#: re-sends only these after a kept connection turned out dead, and the
#: broker's method table (:mod:`heartbeat.broker.api`) declares the same
#: set.  Why each is (or is not) here:
#:
#: * ``ping``, ``get_status``: they only read.
#: * ``put_state``: a post replaces the host's whole state (the latest post
#:   wins), so a copy posts the same content again.  The version it bumps
#:   counts posts, not distinct states: a copy costs one version number and
#:   one more write of identical data, nothing else.
#: * ``start_domain_monitor``, ``stop_domain_monitor``: they bring the
#:   monitor to a target state; a copy finds it there and answers the view.
#: * ``set_maintenance``: it sets a mode (it is not a toggle).
#: * ``lockspace_join``: joining a lockspace that is joined or being joined
#:   answers the view and does nothing; joining never takes or gives up a
#:   lease.
#:
#: Never re-sent, because they take or give up the protection of the
#: workload and a copy would not answer like the original:
#:
#: * ``acquire_lease``: sanlock refuses (EEXIST) a second acquire of a
#:   lease the process already holds, so a copy would report a failure for
#:   a lease that was acquired, and the caller would abort a workload that
#:   holds it.
#: * ``release_lease``: sanlock answers a second release with EPERM, and a
#:   copy arriving after a new acquire would release that one.
#: * ``lockspace_leave``: it ends the host's membership of the lockspace; a
#:   copy arriving after another client's join would undo that join.
IDEMPOTENT = frozenset({
    'ping', 'get_status', 'put_state', 'start_domain_monitor',
    'stop_domain_monitor', 'set_maintenance', 'lockspace_join',
})


@dataclasses.dataclass(frozen=True)
class Frame:
    """One decoded frame: its kind and its raw body."""

    kind: int
    body: bytes


def encode_frame(kind: int, body: bytes) -> bytes:
    return HEADER.pack(MAGIC, VERSION, kind, len(body)) + body


def encode_json(kind: int, obj: Any) -> bytes:
    body = json.dumps(obj, separators=(',', ':'),
                      allow_nan=False).encode('utf-8')
    return encode_frame(kind, body)


def request(call_id: int, method: str, args: dict[str, Any]) -> bytes:
    return encode_json(REQUEST, {'id': call_id, 'method': method,
                                 'args': args})


def ok_response(call_id: int | None, result: Any) -> bytes:
    return encode_json(RESPONSE, {'id': call_id, 'ok': True,
                                  'result': result})


def error_response(call_id: int | None, kind: str, message: str) -> bytes:
    return encode_json(RESPONSE, {'id': call_id, 'ok': False,
                                  'error': {'type': kind,
                                            'message': message}})


class FrameDecoder:
    """Incremental decoder: feed bytes, get whole frames back."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return every frame it completes.

        Raises :class:`~heartbeat.broker.errors.ProtocolError` on a header
        that cannot be trusted; the decoder is then unusable.
        """
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            magic, version, kind, length = HEADER.unpack_from(self._buf, 0)
            if magic != MAGIC:
                raise errors.ProtocolError(
                    'bad frame magic %r: the peer does not speak the '
                    'heartbeat broker protocol' % bytes(magic))
            if version != VERSION:
                raise errors.ProtocolError(
                    'protocol version %d is not supported (this side speaks '
                    '%d): use a client and broker of the same release'
                    % (version, VERSION))
            if kind not in KINDS:
                raise errors.ProtocolError('unknown frame kind %d' % kind)
            if length > self.max_frame:
                raise errors.ProtocolError(
                    'frame of %d bytes exceeds the limit of %d bytes '
                    '([broker] max_frame_bytes)' % (length, self.max_frame))
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append(Frame(kind, bytes(self._buf[HEADER.size:end])))
            del self._buf[:end]
        return frames


def decode_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a body; BadRequest if it is not one."""
    try:
        obj = json.loads(body.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise errors.BadRequest('body is not UTF-8 JSON: %s' % err) from err
    if not isinstance(obj, dict):
        raise errors.BadRequest('body is not a JSON object')
    return obj


@dataclasses.dataclass(frozen=True)
class Response:
    """A decoded response."""

    call_id: int | None
    ok: bool
    result: Any = None
    error_type: str = ''
    error_message: str = ''

    def value(self) -> Any:
        """The result, or RemoteError for an error response."""
        if not self.ok:
            raise errors.RemoteError(self.error_type, self.error_message)
        return self.result


def decode_response(body: bytes) -> Response:
    """The response in ``body``; ProtocolError if it is not one."""
    try:
        obj = decode_body(body)
    except errors.BadRequest as err:
        raise errors.ProtocolError('bad response: %s' % err) from err
    call_id = obj.get('id')
    if not isinstance(call_id, int) and call_id is not None:
        raise errors.ProtocolError('bad response: id is not an integer')
    if obj.get('ok') is True:
        return Response(call_id, True, obj.get('result'))
    error = obj.get('error')
    if not isinstance(error, dict):
        raise errors.ProtocolError('bad response: no result and no error')
    return Response(call_id, False,
                    error_type=str(error.get('type', 'Error')),
                    error_message=str(error.get('message', '')))
