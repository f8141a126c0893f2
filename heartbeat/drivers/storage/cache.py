"""The host slots of an area as last read, each decoded once per change.

An observer reads the whole area on every poll, while most members have
not written since the previous one.  The cache keeps, per host slot, the
bytes of its record (header and payload: everything its CRC covers, so
everything decoding looks at) and what they decoded to.  A slot whose
bytes are the same as at the previous read costs one comparison and hands
back the very same object.  A slot whose bytes changed is checked again in
full (magic, version, length, CRC, host_id); its payload is parsed again
unless it is byte for byte the payload of the valid report decoded before,
as it is when a member beats without changing its state: then the new
report shares the payload mapping of the previous one.
"""

from __future__ import annotations

import itertools
import mmap
import struct
import sys

from heartbeat.drivers.storage import layout
from heartbeat.model import decoded_report
from heartbeat.model import InvalidRecord
from heartbeat.model import Report

#: What a host slot holds: a report, an invalid record, or nothing (empty).
Item = Report | InvalidRecord | None

_MAGIC_SIZE = len(layout.MAGIC)
_LENGTH = struct.Struct('<I')


def location(host_id: int) -> str:
    return 'slot %d' % host_id


class SlotCache:
    """The decoded host slots of an area of ``geometry``, kept across reads.

    :meth:`update` takes the bytes of each whole-area read (``bytes`` or an
    ``mmap``, whose slices are ``bytes``); :meth:`view` returns what the
    last one held.  Not thread-safe: the caller serialises the two.
    """

    def __init__(self, geometry: layout.Geometry) -> None:
        hosts = range(1, geometry.max_hosts + 1)
        self._slot_size = geometry.slot_size
        self._starts = [geometry.offset(host_id) for host_id in hosts]
        self._locations = [location(host_id) for host_id in hosts]
        # Per host slot (index host_id - 1): where the bytes compared at
        # the next read end, those bytes as last read (None before the
        # first read: unequal to anything), the payload bytes of the valid
        # report they hold, and what they decoded to.
        self._ends = list(self._starts)
        self._seen: list[bytes | None] = [None] * len(hosts)
        self._bodies: list[bytes | None] = [None] * len(hosts)
        self._items: list[Item] = [None] * len(hosts)
        self._views: dict[str | None, tuple[tuple[Report, ...],
                                            tuple[InvalidRecord, ...]]] = {}

    def update(self, buf: bytes | mmap.mmap) -> int:
        """Take the bytes of a whole-area read; return the slots changed."""
        ends = self._ends
        changed = [index for index, start, end, seen in zip(
            itertools.count(), self._starts, ends, self._seen)
            if buf[start:end] != seen]
        for index in changed:
            self._decode(index, buf)
        if changed:
            self._views.clear()
        return len(changed)

    def view(self, group: str | None = None
             ) -> tuple[tuple[Report, ...], tuple[InvalidRecord, ...]]:
        """The reports (of ``group``, or all) and invalid slots last read.

        Invalid slots are listed whatever the group: their group is
        unknown.  The tuples are the same objects until a slot changes.
        """
        found = self._views.get(group)
        if found is None:
            items = self._items
            if group is None:
                reports = tuple([item for item in items
                                 if isinstance(item, Report)])
            else:
                reports = tuple([item for item in items
                                 if isinstance(item, Report)
                                 and item.group == group])
            invalid = tuple([item for item in items
                             if isinstance(item, InvalidRecord)])
            found = self._views[group] = (reports, invalid)
        return found

    def _decode(self, index: int, buf: bytes | mmap.mmap) -> None:
        start = self._starts[index]
        end = self._ends[index]
        body = self._bodies[index]
        if body is None or buf[start + layout.HEADER_SIZE:end] != body:
            # Not a beat (the payload of the valid record before under a
            # new header, most often the case): find where it ends now.
            if buf[start:start + _MAGIC_SIZE] == layout.EMPTY_MAGIC:
                # Empty is told by the magic alone: that is all to compare.
                self._ends[index] = start + _MAGIC_SIZE
                self._seen[index] = layout.EMPTY_MAGIC
                self._bodies[index] = None
                self._items[index] = None
                return
            (length,) = _LENGTH.unpack_from(buf,
                                            start + layout.LENGTH_OFFSET)
            end = start + min(layout.HEADER_SIZE + length, self._slot_size)
        data = buf[start:end]
        self._ends[index] = end
        self._seen[index] = data
        item: Report | InvalidRecord
        try:
            item, body = self._report(index, data)
        except layout.CorruptSlot as err:
            item, body = InvalidRecord(self._locations[index], str(err)), None
        self._bodies[index] = body
        self._items[index] = item

    def _report(self, index: int, data: bytes) -> tuple[Report, bytes]:
        """The report in record ``data`` of slot ``index``, and its payload.

        Raises CorruptSlot (or NewerFormat) if ``data`` holds none.
        """
        frame = layout.record(data, index + 1)
        assert frame is not None  # the magic is not empty
        (_, _, flags, _, seq, incarnation, timestamp, _, _), body = frame
        assert isinstance(body, bytes)  # a slice of bytes
        left = bool(flags & layout.FLAG_LEFT)
        old = self._items[index]
        if body == self._bodies[index] and isinstance(old, Report):
            return decoded_report(old.member_id, old.group, seq, incarnation,
                                  old.state, old.score, old.payload,
                                  timestamp, left, old.location), body
        payload = layout.decode_payload(body)
        layout.check_host_payload(payload)
        state = payload.get('state')
        # Group names and states repeat across members: one string each.
        return decoded_report(payload['member_id'],
                              sys.intern(payload['group']),
                              seq, incarnation,
                              sys.intern(state) if state is not None
                              else None,
                              payload.get('score'), payload.get('data', {}),
                              timestamp, left,
                              self._locations[index]), body
