"""The shared-storage metadata driver (``storage``), the embedded default.

Options: ``[heartbeat_storage]`` path, slot_size, max_hosts, direct_io,
claim_timeout; ``[heartbeat] host_id`` picks the slot a member writes.

Considerations:

* Every host needs its own ``[heartbeat] host_id``; a member only ever
  writes the slot of its host_id and checks, before each write, that the
  slot still holds its own last record, so a second process configured with
  the same id is detected and refused instead of silently overwriting.
  Damage is not a second writer: a slot whose bytes are no record at all
  (bad magic, CRC mismatch, a torn write) is rewritten by the owner's next
  beat, logged and counted in ``StorageDriver.slot_repairs``.
* Joining an occupied slot waits ``claim_timeout`` for it to change; if it
  does, a live member owns it and the join is refused.
* One process holds one slot: the driver publishes for one member.
* Observers read the whole area in one read; a corrupt slot is reported as
  invalid and never stops the others being read.
* The writer's wall-clock timestamp is informational only.
* Cluster flags (CLUSTER_FLAGS) live in slot 0 beside the geometry; the
  maintenance flag keeps the place and values it always had, so areas and
  hosts of earlier versions read it unchanged.  A flag write reads slot 0
  and writes it back whole with O_DSYNC; the storage has no compare-and-
  set, so two hosts writing *different* flags at the same instant can lose
  one of the two writes (the same flag: the last writer wins, as before).
"""

from __future__ import annotations

import mmap
import threading
import time
from typing import Any
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.drivers import base
from heartbeat.drivers.storage import area as area_mod
from heartbeat.drivers.storage import cache
from heartbeat.drivers.storage import layout
from heartbeat.drivers.storage import volume as volume_mod
from heartbeat.drivers.storage.volume import Volume
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.model import Snapshot

LOG = logging.getLogger(__name__)


def geometry_from(conf: cfg.ConfigOpts) -> layout.Geometry:
    return layout.Geometry(slot_size=conf.heartbeat_storage.slot_size,
                           max_hosts=conf.heartbeat_storage.max_hosts)


def open_area(conf: cfg.ConfigOpts, writable: bool = True,
              create: bool = False) -> area_mod.Area:
    """Open the configured area (without checking its content)."""
    geometry = geometry_from(conf)
    volume = Volume(conf.heartbeat_storage.path,
                    direct_io=conf.heartbeat_storage.direct_io,
                    writable=writable,
                    create_size=geometry.area_size if create else None)
    return area_mod.Area(volume, geometry)


class StorageDriver(base.Driver):
    """Reports in per-host slots of a shared metadata file or device.

    ``slot_repairs`` counts the beats of this process that found its own
    slot damaged (bad magic, version, length or CRC: a bit flip, a torn
    write, garbage) and rewrote it; each repair is logged once, as a
    warning naming the damage.  A slot holding an intact record that is
    not ours, or wiped to empty, is refused with HostIdConflict instead.
    """

    name: ClassVar[str] = 'storage'
    capabilities: ClassVar[frozenset[base.Capability]] = frozenset(
        {base.Capability.FENCING_COMPATIBLE, base.Capability.BATCHED_READ,
         base.Capability.CLUSTER_FLAGS})

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.geometry = geometry_from(conf)
        self._area: area_mod.Area | None = None
        self._member: tuple[str, str] | None = None
        self._host_id = 0
        self._last_written: bytes | None = None
        self._pending: bytes | None = None
        #: Own-slot repairs so far (see the class docstring).
        self.slot_repairs = 0
        self._write_error: exception.StorageError | None = None
        # Snapshots: the decoded slots and the buffer each read lands in,
        # used by one snapshot at a time.
        self._read_lock = threading.Lock()
        self._reader: tuple[cache.SlotCache, mmap.mmap] | None = None

    @property
    def payload_limit(self) -> int:
        return self.geometry.payload_limit

    @property
    def host_id(self) -> int:
        host_id: int | None = self.conf.heartbeat.host_id
        if host_id is None:
            raise exception.ConfigError(
                'The storage driver needs [heartbeat] host_id (1..%d), unique '
                'per host, to know which slot to write.'
                % self.geometry.max_hosts)
        if host_id > self.geometry.max_hosts:
            raise exception.ConfigError(
                '[heartbeat] host_id (%d) is above [heartbeat_storage] '
                'max_hosts (%d).' % (host_id, self.geometry.max_hosts))
        return host_id

    @property
    def area(self) -> area_mod.Area:
        if self._area is None:
            raise exception.StorageError(
                'The storage driver is not started; call start() first.')
        return self._area

    def start(self) -> None:
        if self._area is not None:
            return
        try:
            area = open_area(self.conf, writable=True)
            self._write_error = None
        except exception.StorageError as err:
            # An observer may only have read access: it can still read
            # snapshots; join() reports why it cannot write.
            area = open_area(self.conf, writable=False)
            self._write_error = err
        try:
            area.check()
        except Exception:
            area.close()
            raise
        self._area = area

    def stop(self) -> None:
        if self._area is not None:
            self._area.close()
            self._area = None
        # Not closed here: a snapshot stalled on the storage may hold it.
        self._reader = None
        self._member = None
        self._last_written = None
        self._pending = None

    def join(self, group: str, member_id: str) -> None:
        host_id = self.host_id
        if self._write_error is not None:
            raise self._write_error
        if self._member is not None and self._member != (group, member_id):
            raise exception.HostIdConflict(
                'This process already publishes %s/%s in slot %d; one '
                'process holds one host_id.'
                % (self._member[0], self._member[1], host_id))
        if self._member is None:
            self._claim(host_id, group, member_id)
            self._member = (group, member_id)
            # Checked above; publish() need not read the option again.
            self._host_id = host_id

    def _claim(self, host_id: int, group: str, member_id: str) -> None:
        first = self.area.read_raw(host_id)
        if layout.is_empty(first):
            return
        read = area_mod.decode_slot(host_id, first)
        if read.newer:
            raise exception.HostIdConflict(
                'Slot %d of %s is held by a newer heartbeat (%s); refusing '
                'to overwrite it.' % (host_id, self.area.path, read.error))
        if read.slot is not None and read.slot.left:
            return
        timeout = self.conf.heartbeat_storage.claim_timeout
        if timeout is None:
            timeout = 2 * self.conf.heartbeat.report_interval
        step = max(0.01, min(0.25, timeout / 8))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(step)
            now = self.area.read_raw(host_id)
            if now != first:
                holder = area_mod.decode_slot(host_id, now)
                who = ('%s/%s' % (holder.slot.payload.get('group'),
                                  holder.slot.payload.get('member_id'))
                       if holder.slot is not None else 'an unknown writer')
                raise exception.HostIdConflict(
                    'Slot %d of %s is being written by live member %s: '
                    '[heartbeat] host_id %d is already in use. Give each host '
                    'its own host_id.'
                    % (host_id, self.area.path, who, host_id))
        LOG.info('Taking over slot %d of %s: unchanged for %.1fs.',
                 host_id, self.area.path, timeout)

    def _check_member(self, report: Report) -> int:
        if self._member != (report.group, report.member_id):
            # self.host_id raises first when the option is missing.
            raise exception.NotJoined(
                'Member %s/%s has not joined through this driver for slot '
                '%d; call join() first.'
                % (report.group, report.member_id, self.host_id))
        return self._host_id

    def _write(self, report: Report) -> None:
        host_id = self._check_member(report)
        data = layout.encode_record(
            host_id, report.seq, report.incarnation,
            report.written_at or time.time(), report.left,
            layout.host_payload(report.member_id, report.group, report.state,
                                report.score, report.payload),
            self.geometry.slot_size)
        repair = None
        if self._last_written is not None:
            current = self.area.read_raw(host_id)
            # A write that failed may still have landed whole: that record
            # is ours too.
            if current != self._last_written and current != self._pending:
                repair = self._damage_or_conflict(host_id, current)
        self._pending = data
        self.area.write_raw(host_id, data)
        self._last_written = data
        self._pending = None
        if repair is not None:
            self.slot_repairs += 1
            LOG.warning('Repaired slot %d of %s: it held no valid record '
                        '(%s), which is damage, not another writer; '
                        'rewrote it with report %d (repair %d of this '
                        'process).', host_id, self.area.path, repair,
                        report.seq, self.slot_repairs)

    def _damage_or_conflict(self, host_id: int, current: bytes) -> str:
        """Why our slot holds damage; HostIdConflict if it holds a record.

        Bytes that fail the frame checks (magic, version, length, CRC) are
        what bit flips, torn writes and garbage leave: they are returned,
        to be overwritten.  An intact record, or a wiped (empty) slot, was
        written on purpose by someone else: refused.
        """
        reason = (None if layout.is_empty(current)
                  else layout.damage(current, self._last_written))
        if reason is not None:
            return reason
        holder = area_mod.decode_slot(host_id, current)
        who = (holder.slot.payload.get('member_id')
               if holder.slot is not None else
               holder.error or 'nobody (wiped)')
        raise exception.HostIdConflict(
            'Slot %d of %s was overwritten behind our back (now: %s); '
            'another process uses [heartbeat] host_id %d. Not writing; '
            'give each host its own host_id.'
            % (host_id, self.area.path, who, host_id))

    def publish(self, report: Report) -> None:
        self._write(report)

    def leave(self, report: Report) -> None:
        self._write(report)
        self._member = None
        self._last_written = None
        self._pending = None

    def set_flag(self, name: str, value: str) -> None:
        base.check_flag(name, value)
        glob = self.area.read_global()
        base.check_flag(name, value, layout.global_flags(glob))
        try:
            self.area.write_slot(layout.with_flag(glob, name, value,
                                                  time.time()))
        except exception.PayloadTooLarge as err:
            raise exception.PayloadTooLarge(
                'Flag %s does not fit into slot 0 of %s beside the other '
                'flags (at most %d bytes); raise [heartbeat_storage] '
                'slot_size (re-initialising the area).'
                % (name, self.area.path, self.geometry.payload_limit)
            ) from err

    def get_flags(self) -> dict[str, str]:
        glob = self.area.read_global()
        return base.valid_flags(layout.global_flags(glob),
                                'slot 0 of %s' % self.area.path)

    def snapshot(self, group: str | None = None,
                 since: Any = None) -> Snapshot:
        """One O_DIRECT read of the whole area, decoding what changed.

        The read lands in a buffer kept for it.  A host slot whose record
        (header and payload) has the bytes it had at the previous read
        costs one comparison and yields the same Report object; any other
        is checked and decoded again (see :class:`cache.SlotCache`), so a
        payload damaged behind an unchanged header is found invalid.
        """
        area = self.area
        with self._read_lock:
            reader = self._reader
            if reader is None:
                reader = self._reader = (
                    cache.SlotCache(self.geometry),
                    volume_mod.aligned(self.geometry.area_size))
            slots, buf = reader
            area.read_all_into(buf)
            slots.update(buf)
            reports, invalid = slots.view(group)
        return Snapshot(reports, invalid)
