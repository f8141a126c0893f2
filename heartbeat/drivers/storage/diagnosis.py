"""What is wrong with slot 0 of a metadata area, and its repair.

Slot 0 holds the geometry and the cluster flags.  While it cannot be used
(garbage, a CRC mismatch, a torn write, a newer format, zeros) the driver
refuses to start, but the host slots are still there: the diagnosis
commands read them with the configured geometry instead and say so, and
``heartbeat-storage repair-global`` rewrites slot 0 alone, after checking
that the host slots found sit where the configured geometry puts them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from oslo_config import cfg

from heartbeat.drivers import storage
from heartbeat.drivers.storage import area as area_mod
from heartbeat.drivers.storage import layout
from heartbeat import exception

#: Records sit on sector boundaries: the geometry check looks at each.
SECTOR = 512
#: The most of a file or device the geometry check reads.
READ_LIMIT = 16 * 1024 * 1024
FROM_SLOT0 = 'slot 0'
FROM_CONFIG = 'configuration'


@dataclasses.dataclass(frozen=True)
class GlobalCheck:
    """Slot 0 of an area: the global record, or why it cannot be used."""

    path: str
    #: The geometry host slots are read with.
    geometry: layout.Geometry
    #: The global record when slot 0 is usable.
    slot: layout.Slot | None
    #: Why slot 0 cannot be used (None: it can).
    problem: str | None = None
    #: What repairs it, a command line where one does.
    repair: str | None = None
    #: Whether slot 0 holds a record of a newer format version.
    newer: bool = False

    @property
    def geometry_source(self) -> str:
        return FROM_CONFIG if self.problem is not None else FROM_SLOT0

    def as_dict(self) -> dict[str, Any]:
        """The problem as a JSON-ready dict (slot, reason, repair, ...)."""
        return {'slot': 0, 'path': self.path, 'reason': self.problem,
                'repair': self.repair,
                'geometry': geometry_dict(self.geometry, FROM_CONFIG)}

    def summary(self) -> str:
        """Two lines for a table: what is wrong and how to repair it."""
        return ('slot 0 of %s cannot be used: %s; host slots read with '
                '[heartbeat_storage] slot_size=%d max_hosts=%d; cluster '
                'flags unknown.\nrepair: %s'
                % (self.path, self.problem, self.geometry.slot_size,
                   self.geometry.max_hosts, self.repair))


def geometry_dict(geometry: layout.Geometry, source: str) -> dict[str, Any]:
    return {'slot_size': geometry.slot_size,
            'max_hosts': geometry.max_hosts, 'source': source}


def _config_arg(conf: cfg.ConfigOpts) -> str:
    files = list(conf.config_file or ())
    return '--config-file %s' % (files[-1] if files else 'FILE')


def _repair_text(conf: cfg.ConfigOpts, newer: bool) -> str:
    command = 'heartbeat-storage %s repair-global' % _config_arg(conf)
    if newer:
        return ('upgrade heartbeat on this host to the version that wrote '
                'slot 0; if no host runs a newer heartbeat, its version '
                'field is damaged: run "%s --force"' % command)
    return ('run "%s": it rewrites slot 0 from [heartbeat_storage] '
            'slot_size and max_hosts while members keep running, keeps '
            'every host slot, and resets the cluster flags (maintenance '
            'becomes none unless --maintenance global is given). '
            '"heartbeat-storage init --force" also repairs it, but wipes '
            'every host slot, so every member has to rejoin.' % command)


def check_global(conf: cfg.ConfigOpts, area: area_mod.Area) -> GlobalCheck:
    """Read slot 0 of ``area``: its record, or why it cannot be used.

    An area too small for the configured geometry, and an intact global
    record of another geometry, are configuration errors: they raise
    StorageError as the driver does.
    """
    area.check_size()
    geometry = area.geometry
    raw = area.read_raw(0)
    read = area_mod.decode_slot(0, raw)
    problem = read.error
    if layout.is_empty(raw):
        problem = ('empty (all zeros): slot 0 was wiped, or the area was '
                   'never initialised')
    elif read.slot is not None and read.slot.payload.get(
            'kind') != layout.GLOBAL_KIND:
        problem = 'it holds no global record (kind %r)' % (
            read.slot.payload.get('kind'),)
    if problem is None:
        layout.check_global(read.slot, geometry, area.path)
        return GlobalCheck(area.path, geometry, read.slot)
    newer = read.newer and layout.damage(raw) is None
    return GlobalCheck(area.path, geometry, None, problem,
                       _repair_text(conf, newer), newer)


def inspect(conf: cfg.ConfigOpts) -> GlobalCheck:
    """:func:`check_global` of the configured area, opened read-only."""
    area = storage.open_area(conf, writable=False)
    try:
        return check_global(conf, area)
    finally:
        area.close()


def misplaced_records(area: area_mod.Area) -> list[str]:
    """Intact records that the area's geometry does not put where they are.

    Looks at every sector of the area and beyond it (up to
    :data:`READ_LIMIT`): a record belongs at ``host_id * slot_size``, with
    ``host_id`` in 1..max_hosts, and fits in its slot.  Damaged bytes and
    records of a newer format say nothing about the geometry: skipped.
    """
    geometry = area.geometry
    length = min(area.volume.size(), max(READ_LIMIT, geometry.area_size))
    length -= length % SECTOR
    data = area.volume.read(0, length) if length else b''
    view = memoryview(data)
    out = []
    offset = data.find(layout.MAGIC, SECTOR)
    while offset != -1:
        fields = (layout.HEADER.unpack_from(view, offset)
                  if offset % SECTOR == 0 else None)
        # A newer format's header cannot be checked (nor trusted).
        if (fields is not None and fields[1] <= layout.FORMAT_VERSION
                and layout.damage(view[offset:]) is None):
            host_id, used = fields[3], layout.HEADER_SIZE + fields[7]
            if offset != host_id * geometry.slot_size:
                out.append('a record of host_id %d at offset %d'
                           % (host_id, offset))
            elif not 1 <= host_id <= geometry.max_hosts:
                out.append('a record of host_id %d, above max_hosts'
                           % host_id)
            elif used > geometry.slot_size:
                out.append('a record of host_id %d of %d bytes'
                           % (host_id, used))
        offset = data.find(layout.MAGIC, offset + 1)
    return out


def repair_global(conf: cfg.ConfigOpts, maintenance: str = 'none',
                  force: bool = False) -> str:
    """Rewrite an unusable slot 0 from the configured geometry.

    Host slots are kept, so members may keep running (none of them writes
    slot 0, and a flag cannot be set while it is unreadable).  Refuses
    (StorageError) when the host slots found do not sit where the
    configured geometry puts them, and, unless ``force``, when slot 0
    holds a record of a newer format.  An intact slot 0 is left alone.
    Returns what was done.
    """
    area = storage.open_area(conf, writable=True)
    try:
        found = check_global(conf, area)
        if found.problem is None:
            return 'Slot 0 of %s is intact; nothing to repair.' % area.path
        if found.newer and not force:
            raise exception.StorageError(
                'Refusing to rewrite slot 0 of %s: %s. Upgrade heartbeat on '
                'this host; if no host runs a newer heartbeat, pass --force.'
                % (area.path, found.problem))
        wrong = misplaced_records(area)
        if wrong:
            raise exception.StorageError(
                'Refusing to rewrite slot 0 of %s: [heartbeat_storage] '
                'slot_size=%d max_hosts=%d do not fit the host slots found '
                '(%s). Make the options match the area, or wipe it with '
                '"heartbeat-storage init --force".'
                % (area.path, area.geometry.slot_size,
                   area.geometry.max_hosts, ', '.join(wrong[:5])))
        area.write_slot(layout.global_slot(area.geometry, maintenance,
                                           time.time()))
        area.check()
        kept = area.read_all()
    finally:
        area.close()
    invalid = sum(1 for read in kept if read.error is not None)
    return ('Repaired slot 0 of %s (it was: %s): slot_size=%d max_hosts=%d '
            'maintenance=%s; %d host slots kept (%d of them invalid).'
            % (found.path, found.problem, found.geometry.slot_size,
               found.geometry.max_hosts, maintenance, len(kept), invalid))


class HostSlotsObserver(storage.StorageDriver):
    """A read-only storage driver that does not need slot 0.

    For diagnosis while slot 0 cannot be used: it reads the host slots
    with the configured geometry; it never joins, and flags cannot be
    read or set through it.
    """

    def start(self) -> None:
        if self._area is not None:
            return
        area = storage.open_area(self.conf, writable=False)
        try:
            area.check_size()
        except Exception:
            area.close()
            raise
        self._area = area

    def join(self, group: str, member_id: str) -> None:
        raise exception.StorageError(
            'This storage observer only reads host slots; it cannot join.')
