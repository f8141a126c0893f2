"""Initialising and inspecting a metadata area (heartbeat-storage)."""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import os
import threading
import time
from typing import Any
from typing import TypeVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.drivers import storage
from heartbeat.drivers.storage import area as area_mod
from heartbeat.drivers.storage import diagnosis
from heartbeat.drivers.storage import layout
from heartbeat.drivers.storage.volume import Volume
from heartbeat import exception

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024
#: Default bound, in seconds, of one read while checking for live members.
IO_TIMEOUT = 10.0
#: The most of a file or device the live check reads (a whole LUN is not
#: an area; members of any geometry write well within this).
READ_LIMIT = 16 * 1024 * 1024
#: Reads stay multiples of this (O_DIRECT on 4 KiB-sector devices).
SECTOR = 4096

T = TypeVar('T')


def _bounded(func: Callable[[], T], timeout: float, what: str,
             path: str) -> T:
    """``func()`` in a thread of its own, waited for ``timeout`` seconds.

    A storage error, any OS error, or no answer in time all mean the
    caller cannot tell whether members are writing: each raises
    :class:`~heartbeat.exception.StorageError` saying so.  A stalled
    thread is left behind (a daemon; a stalled read cannot be cancelled).
    """
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box['value'] = func()
        except Exception as err:  # reported to the caller below
            box['error'] = err

    worker = threading.Thread(target=call, name='area-check', daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise exception.StorageError(
            'Cannot tell whether members are writing %s: %s did not answer '
            'within %.1fs (storage stalled?); refusing. Pass --force to '
            'initialise it anyway.' % (path, what, timeout))
    err = box.get('error')
    if err is not None:
        raise exception.StorageError(
            'Cannot tell whether members are writing %s: %s failed (%s); '
            'refusing. Pass --force to initialise it anyway.'
            % (path, what, str(err).rstrip('.'))) from err
    value: T = box['value']
    return value


def _changed(geometry: layout.Geometry, before: bytes,
             after: bytes) -> dict[int, str]:
    """Slots (by index) that differ between two reads, with their writer.

    Slot 0 is the global slot (written by maintenance requests); an index
    past ``max_hosts`` belongs to an area of another geometry.
    """
    size = geometry.slot_size
    out: dict[int, str] = {}
    for off in range(0, min(len(before), len(after)), size):
        if before[off:off + size] == after[off:off + size]:
            continue
        index = off // size
        if index == 0:
            out[0] = 'the global slot 0'
            continue
        read = area_mod.decode_slot(index, after[off:off + size])
        who = (read.slot.payload.get('member_id', '?')
               if read.slot is not None else '?')
        out[index] = 'host_id %d (%s)' % (index, who)
    return out


def live_writers(path: str, geometry: layout.Geometry, watch: float,
                 io_timeout: float = IO_TIMEOUT,
                 direct_io: bool = True) -> list[str]:
    """Who writes the area at ``path`` during ``watch`` seconds.

    Returns one description per slot whose bytes changed (empty when the
    file does not exist, is empty, or nothing changed).  Fails closed: an
    error or a stall (one operation taking more than ``io_timeout``) while
    looking raises :class:`~heartbeat.exception.StorageError`, never an
    empty answer.
    """
    def stat() -> int:
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            return 0

    if _bounded(stat, io_timeout, 'stat', path) == 0:
        return []
    vol = _bounded(lambda: Volume(path, direct_io=direct_io, writable=False,
                                  option='[heartbeat_storage] path'),
                   io_timeout, 'open', path)
    size = _bounded(vol.size, io_timeout, 'measuring', path)
    length = min(size, max(READ_LIMIT, geometry.area_size))
    length -= length % SECTOR
    if length == 0:
        return []

    def read() -> bytes:
        return vol.read(0, length)

    try:
        before = _bounded(read, io_timeout, 'reading', path)
        live: dict[int, str] = {}
        deadline = time.monotonic() + watch
        while time.monotonic() < deadline:
            time.sleep(min(0.1, watch))
            after = _bounded(read, io_timeout, 'reading', path)
            live.update(_changed(geometry, before, after))
            before = after
        LOG.debug('Watched %s for %.1fs: %s.', path, watch,
                  ', '.join(live[i] for i in sorted(live)) or 'no writer')
    finally:
        # Closing waits for a stalled read (the volume lock) and may stall
        # itself: never make the caller wait for it.
        threading.Thread(target=vol.close, name='area-check-close',
                         daemon=True).start()
    return [live[i] for i in sorted(live)]


def check_idle(conf: cfg.ConfigOpts, watch: float | None = None,
               io_timeout: float = IO_TIMEOUT) -> None:
    """Refuse (StorageError) unless nobody writes the configured area.

    Watches it for ``watch`` seconds (default: twice report_interval); see
    :func:`live_writers` for what counts and how it fails closed.
    """
    path = conf.heartbeat_storage.path
    if watch is None:
        watch = 2 * conf.heartbeat.report_interval
    live = live_writers(path, storage.geometry_from(conf), watch,
                        io_timeout=io_timeout,
                        direct_io=conf.heartbeat_storage.direct_io)
    if live:
        raise exception.StorageError(
            'Refusing to initialise %s: live members are writing it (%s). '
            'Stop them first, or pass --force to wipe it anyway.'
            % (path, ', '.join(live)))


def init_area(conf: cfg.ConfigOpts, force: bool = False,
              watch: float | None = None,
              io_timeout: float = IO_TIMEOUT) -> str:
    """Create or re-initialise the configured area; return what was done.

    Unless ``force``, first runs :func:`check_idle` (``watch``,
    ``io_timeout``): it refuses when any slot changes, and when the area
    cannot be read or stalls, since then nobody can tell.
    """
    path = conf.heartbeat_storage.path
    geometry = storage.geometry_from(conf)
    if not force:
        # First, and bounded: a stalled area must not hang the stat below.
        check_idle(conf, watch=watch, io_timeout=io_timeout)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(path) and not os.path.isdir(parent):
        raise exception.StorageError(
            'Cannot create metadata area %s: directory %s does not exist; '
            'create it or fix [heartbeat_storage] path.' % (path, parent))
    area = storage.open_area(conf, writable=True, create=True)
    try:
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


@dataclasses.dataclass(frozen=True)
class AreaDump:
    """Slot 0 (or why it cannot be used) and the host slots."""

    check: diagnosis.GlobalCheck
    rows: list[DumpRow]

    @property
    def glob(self) -> dict[str, Any] | None:
        """The global slot's payload; None while it cannot be used."""
        slot = self.check.slot
        return dict(slot.payload) if slot is not None else None


def _row(read: area_mod.SlotRead) -> DumpRow:
    if read.error is not None:
        return DumpRow(read.host_id, 'invalid', {'reason': read.error})
    slot = read.slot
    if slot is None:
        return DumpRow(read.host_id, 'empty', {})
    return DumpRow(read.host_id, 'left' if slot.left else 'valid', {
        'seq': slot.seq, 'incarnation': slot.incarnation,
        'timestamp': slot.timestamp, **slot.payload})


def inspect_area(conf: cfg.ConfigOpts,
                 include_empty: bool = False) -> AreaDump:
    """Every host slot, valid or not, with reasons, and slot 0.

    While slot 0 cannot be used the host slots are read with the
    configured geometry and ``check.problem`` says why (see
    :func:`~heartbeat.drivers.storage.diagnosis.check_global`).
    """
    area = storage.open_area(conf, writable=False)
    try:
        check = diagnosis.check_global(conf, area)
        return AreaDump(check, [_row(read) for read in area.read_all(
            include_empty=include_empty)])
    finally:
        area.close()


def dump_area(conf: cfg.ConfigOpts, include_empty: bool = False
              ) -> tuple[dict[str, Any], list[DumpRow]]:
    """The global slot and every host slot; StorageError if slot 0 is bad."""
    dump = inspect_area(conf, include_empty=include_empty)
    if dump.glob is None:
        raise exception.StorageError(dump.check.summary())
    return dump.glob, dump.rows
