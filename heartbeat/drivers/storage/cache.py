"""The host slots of an area as last read, each decoded once per change.

An observer reads the whole area on every poll, while most members have
not written since the previous one.  The cache keeps, per host slot, the
bytes of its record (header and payload: everything its CRC covers, so
everything decoding looks at) and what they decoded to.  A slot whose
bytes are the same as at the previous read costs one comparison (made in
C for every slot at once) and hands back the very same object.  A slot
whose bytes changed is checked again in full (magic, version, length,
CRC, host_id); its payload is parsed again unless it is byte for byte the
payload of the valid report decoded before, as it is when a member beats
without changing its state: then the new report shares the payload of
the previous one.  While every slot holds a report, the view of the area
is the list of them as it is.
"""

from __future__ import annotations

import itertools
import mmap
import operator
import struct
import sys
import typing

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
        # Per host slot (index host_id - 1): the span of the bytes compared
        # at the next read (a slice of the area), those bytes as last read
        # (None before the first read: unequal to anything), the payload
        # bytes of the valid report they hold, and what they decoded to.
        self._spans = [slice(start, start) for start in self._starts]
        self._seen: list[bytes | None] = [None] * len(hosts)
        self._bodies: list[bytes | None] = [None] * len(hosts)
        self._items: list[Item] = [None] * len(hosts)
        # How many items are no report (empty or invalid slots).
        self._others = len(hosts)
        self._views: dict[str | None, tuple[tuple[Report, ...],
                                            tuple[InvalidRecord, ...]]] = {}

    def update(self, buf: bytes | mmap.mmap) -> int:
        """Take the bytes of a whole-area read; return the slots changed."""
        # The compare of every slot runs in C (map): it is the whole cost
        # of a slot that did not change, and most did not.
        records = list(map(buf.__getitem__, self._spans))
        changed = list(itertools.compress(
            itertools.count(), map(operator.ne, records, self._seen)))
        try:
            for index in changed:
                self._decode(index, buf, records[index])
        finally:
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
            if group is None and not self._others:
                # Every slot holds a report (the usual area): no filter.
                found = self._views[group] = (
                    tuple(typing.cast(list[Report], items)), ())
                return found
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

    def _decode(self, index: int, buf: bytes | mmap.mmap,
                data: bytes) -> None:
        """Check and decode slot ``index``, whose bytes are now ``data``.

        ``data`` spans the record read there before.  If its payload bytes
        are those of the valid report decoded before (a member that beat
        without changing its state) and the new header, checked, says the
        record still ends there, only the header is new.  Otherwise the
        record may have a new length: it is found again and checked whole.
        """
        body = self._bodies[index]
        old = self._items[index]
        if (body is not None and isinstance(old, Report)
                and data[layout.HEADER_SIZE:] == body):
            try:
                frame = layout.record(data, index + 1)
            except layout.CorruptSlot:
                frame = None  # checked again below, as a whole record
            if frame is not None and len(frame[1]) == len(body):
                (_, _, flags, _, seq, incarnation, timestamp, _, _), _ = frame
                self._seen[index] = data
                self._store(index, decoded_report(
                    old.member_id, old.group, seq, incarnation, old.state,
                    old.score, old.payload, timestamp,
                    bool(flags & layout.FLAG_LEFT), old.location), body)
                return
        start = self._starts[index]
        if buf[start:start + _MAGIC_SIZE] == layout.EMPTY_MAGIC:
            # Empty is told by the magic alone: that is all to compare.
            self._spans[index] = slice(start, start + _MAGIC_SIZE)
            self._seen[index] = layout.EMPTY_MAGIC
            self._store(index, None, None)
            return
        (length,) = _LENGTH.unpack_from(buf, start + layout.LENGTH_OFFSET)
        end = start + min(layout.HEADER_SIZE + length, self._slot_size)
        self._spans[index] = slice(start, end)
        data = self._seen[index] = buf[start:end]
        try:
            frame = layout.record(data, index + 1)
            assert frame is not None  # the magic is not empty
            (_, _, flags, _, seq, incarnation, timestamp, _, _), new = frame
            assert isinstance(new, bytes)  # a slice of bytes
            payload = layout.decode_payload(new)
            layout.check_host_payload(payload)
        except layout.CorruptSlot as err:
            self._store(index, InvalidRecord(self._locations[index],
                                             str(err)), None)
            return
        state = payload.get('state')
        # Group names and states repeat across members: one string each.
        self._store(index, decoded_report(
            payload['member_id'], sys.intern(payload['group']), seq,
            incarnation, sys.intern(state) if state is not None else None,
            payload.get('score'), payload.get('data', {}), timestamp,
            bool(flags & layout.FLAG_LEFT), self._locations[index]), new)

    def _store(self, index: int, item: Item, body: bytes | None) -> None:
        """Slot ``index`` holds ``item`` now (a report of payload ``body``)."""
        self._others += ((type(item) is not Report)
                         - (type(self._items[index]) is not Report))
        self._items[index] = item
        self._bodies[index] = body
