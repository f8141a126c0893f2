"""Pure encoding of the shared-storage metadata area.

The area is ``max_hosts + 1`` slots of ``slot_size`` bytes (4096 by default,
sector aligned).  Slot 0 is global: its payload holds the format
(``kind``), the geometry (``slot_size``, ``max_hosts``) and the cluster
flags, ``maintenance`` at the top level as it always was and any other flag
in a ``flags`` object beside it, which readers that predate it ignore.
Slot N belongs to host_id N.  Every slot is::

    offset size field
    0      8    magic  b'HBEATSLT'
    8      2    format version
    10     2    flags (bit 0: the member left cleanly)
    12     4    host_id (0 for the global slot)
    16     8    seq
    24     8    incarnation
    32     8    writer wall-clock timestamp (informational only)
    40     4    payload length
    44     4    CRC32 of bytes 0..43 and the payload
    48     ...  payload: UTF-8 JSON, bounded by the slot size

All integers are little endian.  An all-zero magic marks an empty slot.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
import struct
from typing import Any
import zlib

from heartbeat import exception

MAGIC = b'HBEATSLT'
FORMAT_VERSION = 1
HEADER = struct.Struct('<8sHHIQQdI')
CRC = struct.Struct('<I')
HEADER_SIZE = HEADER.size + CRC.size
#: The header and its CRC, unpacked at once.
FRAME = struct.Struct('<8sHHIQQdII')
#: The header bytes that identify one record: host_id, seq, incarnation.
IDENTITY = slice(12, 32)
#: Where the payload length sits in the header.
LENGTH_OFFSET = 40
FLAG_LEFT = 0x1
EMPTY_MAGIC = bytes(len(MAGIC))
GLOBAL_KIND = 'global'
#: The flag kept at the top level of slot 0 (the original format).
MAINTENANCE_KEY = 'maintenance'
#: Where slot 0 keeps every other flag.
FLAGS_KEY = 'flags'


class CorruptSlot(exception.StorageError):
    """A slot holds bytes that cannot be trusted; ``str()`` says why."""


class NewerFormat(CorruptSlot):
    """A slot holds a record of a newer format version than this one."""


@dataclasses.dataclass(frozen=True)
class Slot:
    """The decoded content of one slot."""

    host_id: int
    seq: int
    incarnation: int
    timestamp: float
    payload: Mapping[str, Any]
    left: bool = False
    version: int = FORMAT_VERSION


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Size and shape of a metadata area."""

    slot_size: int
    max_hosts: int

    @property
    def area_size(self) -> int:
        return self.slot_size * (self.max_hosts + 1)

    @property
    def payload_limit(self) -> int:
        return self.slot_size - HEADER_SIZE

    def offset(self, host_id: int) -> int:
        return host_id * self.slot_size


# One encoder for every record: json.dumps with options builds a new one
# per call.
_ENCODER = json.JSONEncoder(separators=(',', ':'), sort_keys=True)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode('utf-8')


def encode(slot: Slot, slot_size: int) -> bytes:
    """Bytes of ``slot``, padded with zeros to ``slot_size``."""
    return encode_record(slot.host_id, slot.seq, slot.incarnation,
                         slot.timestamp, slot.left, slot.payload, slot_size,
                         slot.version)


def encode_record(host_id: int, seq: int, incarnation: int,
                  timestamp: float, left: bool, payload: Mapping[str, Any],
                  slot_size: int, version: int = FORMAT_VERSION) -> bytes:
    """:func:`encode` of the Slot of these fields, without making one."""
    body = encode_payload(payload)
    limit = slot_size - HEADER_SIZE
    if len(body) > limit:
        raise exception.PayloadTooLarge(
            'Report of host_id %d is %d bytes encoded, the slot holds at most '
            '%d: publish a smaller state/payload or raise '
            '[heartbeat_storage] slot_size (re-initialising the area).'
            % (host_id, len(body), limit))
    head = HEADER.pack(MAGIC, version, FLAG_LEFT if left else 0, host_id,
                       seq, incarnation, timestamp, len(body))
    crc = zlib.crc32(body, zlib.crc32(head))
    return b''.join((head, CRC.pack(crc), body, bytes(limit - len(body))))


def used_bytes(buf: memoryview, start: int, slot_size: int) -> int:
    """Bytes of the slot at ``start`` that hold its record (header+payload)."""
    length = int.from_bytes(
        buf[start + LENGTH_OFFSET:start + LENGTH_OFFSET + 4], 'little')
    return min(HEADER_SIZE + length, slot_size)


def is_empty(buf: bytes | memoryview) -> bool:
    return bytes(buf[:len(MAGIC)]) == EMPTY_MAGIC


_JSON = json.JSONDecoder()


def _frame(buf: bytes | memoryview
           ) -> tuple[tuple[Any, ...], bytes | memoryview] | None:
    """The checked header fields and payload bytes of ``buf``; None if empty.

    The fields are those of :data:`FRAME`; the payload is a slice of
    ``buf`` (bytes of bytes, a view of a view).  Raises
    :class:`NewerFormat` for a record of a newer format (its frame cannot
    be checked here) and :class:`CorruptSlot` for bytes that are no record
    at all: truncated, foreign magic, bad version or length, or a CRC
    mismatch.
    """
    if len(buf) < HEADER_SIZE:
        raise CorruptSlot('truncated: %d bytes, a header needs %d'
                          % (len(buf), HEADER_SIZE))
    fields = FRAME.unpack_from(buf, 0)
    magic, version, length, crc = fields[0], fields[1], fields[7], fields[8]
    if magic != MAGIC:
        if magic == EMPTY_MAGIC:
            return None
        raise CorruptSlot('bad magic %r' % bytes(magic))
    if version > FORMAT_VERSION:
        raise NewerFormat('format version %d is newer than this heartbeat '
                          '(%d): upgrade heartbeat on this host'
                          % (version, FORMAT_VERSION))
    if version < 1:
        raise CorruptSlot('bad format version %d' % version)
    if length > len(buf) - HEADER_SIZE:
        raise CorruptSlot('payload length %d exceeds the slot' % length)
    body = buf[HEADER_SIZE:HEADER_SIZE + length]
    actual = zlib.crc32(body, zlib.crc32(buf[:HEADER.size]))
    if crc != actual:
        raise CorruptSlot('CRC mismatch (stored %08x, computed %08x)'
                          % (crc, actual))
    return fields, body


def damage(buf: bytes | memoryview, own: bytes | None = None) -> str | None:
    """Why ``buf`` can be no record that any writer meant to write.

    The reason (as :func:`decode` words it) for bytes that fail the frame
    checks: truncated, foreign magic, bad format version or length, or a
    CRC mismatch, which is what bit flips, torn writes and garbage leave.
    None for an empty slot and for an intact record whoever wrote it: any
    host_id, any payload, and a newer format version (whose checksum this
    version cannot check, so it is taken to be intact) unless it carries
    the host_id, seq and incarnation of ``own``, the record last written
    here: then a flipped bit in the version field made it look newer.
    """
    try:
        _frame(buf)
    except NewerFormat as err:
        if own is not None and bytes(buf[IDENTITY]) == own[IDENTITY]:
            return ('the record written here, altered in place (it now '
                    'reads: %s)' % err)
        return None
    except CorruptSlot as err:
        return str(err)
    return None


def record(buf: bytes | memoryview, expected_host_id: int
           ) -> tuple[tuple[Any, ...], bytes | memoryview] | None:
    """The checked header fields and payload bytes of a slot; None if empty.

    The fields are those of :data:`FRAME` in order, the payload a slice of
    ``buf``.  Raises as :func:`decode` does, except for the payload, which
    is not parsed.
    """
    frame = _frame(buf)
    if frame is not None and frame[0][3] != expected_host_id:
        raise CorruptSlot('slot %d holds a record of host_id %d'
                          % (expected_host_id, frame[0][3]))
    return frame


def decode_payload(body: bytes | memoryview) -> dict[str, Any]:
    """The JSON object in ``body``; CorruptSlot if it is none."""
    try:
        payload = _JSON.decode(str(body, 'utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CorruptSlot('payload is not JSON: %s' % err) from err
    if not isinstance(payload, dict):
        raise CorruptSlot('payload is not a JSON object')
    return payload


def decode(buf: bytes | memoryview, expected_host_id: int) -> Slot | None:
    """Decode one slot; None if it is empty.

    Raises :class:`CorruptSlot` naming the reason for anything that cannot
    be trusted: foreign magic, truncated slot, newer format version
    (:class:`NewerFormat`), bad length, CRC mismatch, wrong host_id, or a
    payload that is not a JSON object.
    """
    frame = record(buf, expected_host_id)
    if frame is None:
        return None
    fields, body = frame
    _, version, flags, host_id, seq, incarnation, timestamp, _, _ = fields
    payload = decode_payload(body)
    return Slot(host_id=host_id, seq=seq, incarnation=incarnation,
                timestamp=timestamp, payload=payload,
                left=bool(flags & FLAG_LEFT), version=version)


def global_slot(geometry: Geometry, maintenance: str = 'none',
                timestamp: float = 0.0) -> Slot:
    """The global slot 0 describing an area of ``geometry``."""
    return Slot(host_id=0, seq=0, incarnation=0, timestamp=timestamp,
                payload={'kind': GLOBAL_KIND,
                         'slot_size': geometry.slot_size,
                         'max_hosts': geometry.max_hosts,
                         'maintenance': maintenance})


def global_flags(slot: Slot) -> dict[str, Any]:
    """The flags stored in the global ``slot``, as found (unchecked).

    An area initialised before flags existed has no ``maintenance`` key in
    some versions: it reads as ``none``, as it always did.
    """
    extra = slot.payload.get(FLAGS_KEY)
    flags = dict(extra) if isinstance(extra, dict) else {}
    flags[MAINTENANCE_KEY] = slot.payload.get(MAINTENANCE_KEY, 'none')
    return flags


def with_flag(slot: Slot, name: str, value: str, timestamp: float) -> Slot:
    """The global ``slot`` with flag ``name`` set to ``value``.

    Everything else in the payload is kept, so that geometry and fields a
    newer heartbeat added survive the write; seq counts the writes.
    """
    payload = dict(slot.payload)
    if name == MAINTENANCE_KEY:
        payload[MAINTENANCE_KEY] = value
    else:
        extra = payload.get(FLAGS_KEY)
        flags = dict(extra) if isinstance(extra, dict) else {}
        flags[name] = value
        payload[FLAGS_KEY] = flags
    return dataclasses.replace(slot, seq=slot.seq + 1, timestamp=timestamp,
                               payload=payload)


def check_global(slot: Slot | None, geometry: Geometry, path: str) -> None:
    """Raise StorageError unless ``slot`` describes an area of ``geometry``."""
    if slot is None:
        raise exception.StorageError(
            'Metadata area %s is not initialised: run "heartbeat-storage '
            'init --config-file FILE" once for the cluster.' % path)
    payload = slot.payload
    if payload.get('kind') != GLOBAL_KIND:
        raise exception.StorageError(
            'Slot 0 of %s is not a heartbeat global slot; check '
            '[heartbeat_storage] path.' % path)
    found = Geometry(slot_size=payload.get('slot_size', -1),
                     max_hosts=payload.get('max_hosts', -1))
    if found != geometry:
        raise exception.StorageError(
            'Metadata area %s was initialised with slot_size=%s and '
            'max_hosts=%s, but [heartbeat_storage] says slot_size=%d and '
            'max_hosts=%d: make the options match the area.'
            % (path, found.slot_size, found.max_hosts, geometry.slot_size,
               geometry.max_hosts))


def host_payload(member_id: str, group: str, state: str | None,
                 score: int | None, data: Mapping[str, Any]) -> dict[str, Any]:
    return {'member_id': member_id, 'group': group, 'state': state,
            'score': score, 'data': dict(data)}


def check_host_payload(payload: Mapping[str, Any]) -> None:
    """Raise CorruptSlot unless ``payload`` has the fields of a host slot."""
    if not isinstance(payload.get('member_id'), str):
        raise CorruptSlot('payload has no member_id')
    if not isinstance(payload.get('group'), str):
        raise CorruptSlot('payload has no group')
    state = payload.get('state')
    if state is not None and not isinstance(state, str):
        raise CorruptSlot('payload state is not a string')
    score = payload.get('score')
    if score is not None and (not isinstance(score, int)
                              or isinstance(score, bool)):
        raise CorruptSlot('payload score is not an integer')
    if not isinstance(payload.get('data', {}), dict):
        raise CorruptSlot('payload data is not an object')
