"""Initialising and inspecting a metadata area (heartbeat-storage)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from oslo_config import cfg

from heartbeat.drivers import storage
from heartbeat.drivers.storage import area as area_mod
from heartbeat.drivers.storage import layout
from heartbeat import exception

CHUNK = 1024 * 1024


def _live_slots(area: area_mod.Area, watch: float) -> list[str]:
    """Host slots whose content changes within ``watch`` seconds."""
    try:
        before = area.read_all_raw()
    except exception.StorageError:
        return []
    size = area.geometry.slot_size
    candidates = []
    for read in area.read_all():
        if read.slot is not None and read.slot.left:
            continue
        candidates.append(read.host_id)
    if not candidates:
        return []
    live: dict[int, str] = {}
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline and len(live) < len(candidates):
        time.sleep(min(0.1, watch))
        after = area.read_all_raw()
        for host_id in candidates:
            off = host_id * size
            if host_id not in live and (after[off:off + size]
                                        != before[off:off + size]):
                read = area_mod.decode_slot(host_id, after[off:off + size])
                who = (read.slot.payload.get('member_id', '?')
                       if read.slot is not None else '?')
                live[host_id] = 'host_id %d (%s)' % (host_id, who)
    return [live[h] for h in sorted(live)]


def init_area(conf: cfg.ConfigOpts, force: bool = False,
              watch: float | None = None) -> str:
    """Create or re-initialise the configured area; return what was done.

    Refuses (:class:`~heartbeat.exception.StorageError`) when host slots
    change while it watches them for ``watch`` seconds (default: twice
    report_interval), unless ``force``.
    """
    path = conf.heartbeat_storage.path
    geometry = storage.geometry_from(conf)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(path) and not os.path.isdir(parent):
        raise exception.StorageError(
            'Cannot create metadata area %s: directory %s does not exist; '
            'create it or fix [heartbeat_storage] path.' % (path, parent))
    existed = os.path.exists(path) and os.path.getsize(path) > 0
    area = storage.open_area(conf, writable=True, create=True)
    try:
        if existed and not force:
            if watch is None:
                watch = 2 * conf.heartbeat.report_interval
            live = _live_slots(area, watch)
            if live:
                raise exception.StorageError(
                    'Refusing to initialise %s: live members are writing it '
                    '(%s). Stop them first, or pass --force to wipe it '
                    'anyway.' % (path, ', '.join(live)))
        zeros = bytes(CHUNK)
        for off in range(0, geometry.area_size, CHUNK):
            length = min(CHUNK, geometry.area_size - off)
            area.volume.write(off, zeros[:length])
        area.write_slot(layout.global_slot(geometry, 'none', time.time()))
        area.check()
    finally:
        area.close()
    return ('Initialised %s: %d host slots of %d bytes (%d bytes).'
            % (path, geometry.max_hosts, geometry.slot_size,
               geometry.area_size))


@dataclasses.dataclass(frozen=True)
class DumpRow:
    host_id: int
    status: str
    detail: dict[str, Any]


def dump_area(conf: cfg.ConfigOpts, include_empty: bool = False
              ) -> tuple[dict[str, Any], list[DumpRow]]:
    """The global slot and every host slot, valid or not, with reasons."""
    area = storage.open_area(conf, writable=False)
    try:
        glob = area.check()
        rows = []
        for read in area.read_all(include_empty=include_empty):
            if read.error is not None:
                rows.append(DumpRow(read.host_id, 'invalid',
                                    {'reason': read.error}))
            elif read.slot is None:
                rows.append(DumpRow(read.host_id, 'empty', {}))
            else:
                slot = read.slot
                rows.append(DumpRow(read.host_id,
                                    'left' if slot.left else 'valid', {
                                        'seq': slot.seq,
                                        'incarnation': slot.incarnation,
                                        'timestamp': slot.timestamp,
                                        **slot.payload}))
        return dict(glob.payload), rows
    finally:
        area.close()
