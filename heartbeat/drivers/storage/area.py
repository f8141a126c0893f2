"""A metadata area: the geometry, the volume, and slot-level operations."""

from __future__ import annotations

import dataclasses
import mmap

from heartbeat.drivers.storage import layout
from heartbeat.drivers.storage.volume import Volume
from heartbeat import exception


@dataclasses.dataclass(frozen=True)
class SlotRead:
    """One slot of a whole-area read: decoded, empty, or invalid."""

    host_id: int
    slot: layout.Slot | None
    error: str | None = None
    #: The slot holds a record of a newer format version (the error says
    #: which): never overwrite it.
    newer: bool = False

    @property
    def empty(self) -> bool:
        return self.slot is None and self.error is None


def decode_slot(host_id: int, raw: bytes | memoryview) -> SlotRead:
    """Decode the slot of ``host_id``; never raises for bad content."""
    try:
        slot = layout.decode(raw, host_id)
        if slot is not None and host_id:
            layout.check_host_payload(slot.payload)
    except layout.NewerFormat as err:
        return SlotRead(host_id, None, str(err), newer=True)
    except layout.CorruptSlot as err:
        return SlotRead(host_id, None, str(err))
    return SlotRead(host_id, slot)


class Area:
    """Slot-level access to an open metadata area."""

    def __init__(self, volume: Volume, geometry: layout.Geometry) -> None:
        self.volume = volume
        self.geometry = geometry

    @property
    def path(self) -> str:
        return self.volume.path

    def check(self) -> layout.Slot:
        """Check the size and the global slot; return the global slot."""
        self.check_size()
        return self.read_global()

    def check_size(self) -> None:
        """Raise StorageError unless the area holds every slot."""
        size = self.volume.size()
        if size < self.geometry.area_size:
            if size == 0 or self.volume.read(0, self.geometry.slot_size)[
                    :len(layout.MAGIC)] != layout.MAGIC:
                layout.check_global(None, self.geometry, self.path)
            raise exception.StorageError(
                'Metadata area %s holds %d bytes but max_hosts=%d and '
                'slot_size=%d need %d: make [heartbeat_storage] options match '
                'the area or re-initialise it.'
                % (self.path, size, self.geometry.max_hosts,
                   self.geometry.slot_size, self.geometry.area_size))

    def read_global(self) -> layout.Slot:
        """The global slot 0, checked against the geometry."""
        read = self.read_slot(0)
        if read.newer:
            raise exception.StorageError(
                'Global slot 0 of %s was written by a newer heartbeat (%s).'
                % (self.path, read.error))
        if read.error is not None:
            raise exception.StorageError(
                'Global slot 0 of %s is unreadable (%s): "heartbeat-storage '
                'dump" shows the host slots and "heartbeat-storage '
                'repair-global" rewrites slot 0 from [heartbeat_storage], '
                'keeping them.' % (self.path, read.error))
        layout.check_global(read.slot, self.geometry, self.path)
        assert read.slot is not None
        return read.slot

    def read_raw(self, host_id: int) -> bytes:
        return self.volume.read(self.geometry.offset(host_id),
                                self.geometry.slot_size)

    def read_slot(self, host_id: int) -> SlotRead:
        return decode_slot(host_id, self.read_raw(host_id))

    def write_raw(self, host_id: int, data: bytes) -> None:
        self.volume.write(self.geometry.offset(host_id), data)

    def write_slot(self, slot: layout.Slot) -> bytes:
        data = layout.encode(slot, self.geometry.slot_size)
        self.write_raw(slot.host_id, data)
        return data

    def read_all_raw(self) -> bytes:
        """One read of the whole area."""
        return self.volume.read(0, self.geometry.area_size)

    def read_all_into(self, buf: mmap.mmap) -> None:
        """One read of the whole area into ``buf`` (see Volume.read_into)."""
        self.volume.read_into(0, buf, self.geometry.area_size)

    def read_all(self, include_empty: bool = False) -> list[SlotRead]:
        """Decode every host slot of one whole-area read."""
        raw = memoryview(self.read_all_raw())
        size = self.geometry.slot_size
        magic_len = len(layout.MAGIC)
        empty = layout.EMPTY_MAGIC
        out = []
        for host_id in range(1, self.geometry.max_hosts + 1):
            start = host_id * size
            if raw[start:start + magic_len] == empty:
                if include_empty:
                    out.append(SlotRead(host_id, None))
                continue
            out.append(decode_slot(host_id, raw[start:start + size]))
        return out

    def close(self) -> None:
        self.volume.close()
