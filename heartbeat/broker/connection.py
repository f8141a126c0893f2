"""How the broker reaches the shared storage: connect, disconnect, validate.

Connections are plugins of the ``heartbeat.storage_connections`` entry point,
chosen by ``[broker] storage_connection``:

* ``path``: the metadata area is a file on a shared POSIX filesystem that
  the host has mounted.  Validation reads the global slot and this host's
  slot with direct I/O and writes, syncs and reads back a small per-host
  probe file next to the area (a real read/write round trip through the
  same filesystem).
* ``block``: the metadata area is a shared block device.  Validation reads
  the global slot and this host's slot with direct I/O and rewrites nothing
  (every other byte of the device belongs to someone else); the write side
  is proven by the writer's own heartbeat writes.

:meth:`StorageConnection.validate` may block as long as the storage does;
the domain monitor runs it in its own thread with a timeout.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import stat
import threading
import time
from typing import ClassVar

from oslo_config import cfg

from heartbeat.drivers.storage import layout
from heartbeat.drivers.storage.volume import Volume
from heartbeat import exception
from heartbeat import plugins

NAMESPACE = 'heartbeat.storage_connections'


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """The outcome of one validation."""

    ok: bool
    delay: float
    error: str | None = None


class StorageConnection(abc.ABC):
    """Base class of storage connections; see the module docstring."""

    name: ClassVar[str]

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.path: str = conf.heartbeat_storage.path
        self.geometry = layout.Geometry(
            slot_size=conf.heartbeat_storage.slot_size,
            max_hosts=conf.heartbeat_storage.max_hosts)
        self.connected = False
        self._probe_volume: Volume | None = None
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _check(self, st: os.stat_result) -> None:
        """Raise StorageError unless ``st`` is the right kind of thing."""

    def connect(self) -> None:
        """Make the storage usable by this host; StorageError if not."""
        try:
            st = os.stat(self.path)
        except OSError as err:
            raise exception.StorageError(
                'Cannot connect the storage %s: %s. Mount/attach it and '
                'check [heartbeat_storage] path.'
                % (self.path, err.strerror or err)) from err
        self._check(st)
        self.connected = True

    def disconnect(self) -> None:
        """Release what connect() and validate() hold; safe to repeat."""
        self.connected = False
        # A probe stuck on a stalled storage holds the lock: leave its
        # volume to it rather than wait.
        if not self._lock.acquire(timeout=1.0):
            return
        try:
            if self._probe_volume is not None:
                self._probe_volume.close()
                self._probe_volume = None
        finally:
            self._lock.release()

    def _volume(self) -> Volume:
        if self._probe_volume is None:
            self._probe_volume = Volume(
                self.path, direct_io=self.conf.heartbeat_storage.direct_io,
                writable=False)
        return self._probe_volume

    def _read_probe(self, host_id: int | None) -> None:
        volume = self._volume()
        raw = volume.read(0, self.geometry.slot_size)
        layout.check_global(layout.decode(raw, 0), self.geometry, self.path)
        if host_id is not None:
            volume.read(self.geometry.offset(host_id),
                        self.geometry.slot_size)

    @abc.abstractmethod
    def _write_probe(self, host_id: int | None) -> None:
        """Write and read back a probe (or explain why none is safe)."""

    def validate(self) -> ProbeResult:
        """One real probe of the storage and how long it took."""
        host_id = self.conf.heartbeat.host_id
        start = time.monotonic()
        with self._lock:
            try:
                self._read_probe(host_id)
                self._write_probe(host_id)
            except (exception.HeartbeatError, OSError) as err:
                return ProbeResult(False, time.monotonic() - start, str(err))
        return ProbeResult(True, time.monotonic() - start)


class PathConnection(StorageConnection):
    """A metadata file on a mounted shared filesystem."""

    name: ClassVar[str] = 'path'

    def _check(self, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise exception.StorageError(
                '%s is not a regular file; use [broker] storage_connection '
                '= block for a block device.' % self.path)

    def probe_path(self, host_id: int | None) -> str:
        directory, base = os.path.split(os.path.abspath(self.path))
        return os.path.join(directory, '.%s.probe-%s'
                            % (base, host_id or 'any'))

    def _write_probe(self, host_id: int | None) -> None:
        path = self.probe_path(host_id)
        token = ('%d %f\n' % (os.getpid(), time.time())).encode()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DSYNC, 0o660)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, token, 0)
            back = os.pread(fd, len(token), 0)
        finally:
            os.close(fd)
        if back != token:
            raise exception.StorageError(
                'Probe file %s read back different bytes than written; the '
                'storage is not consistent.' % path)


class BlockDeviceConnection(StorageConnection):
    """A metadata area on a shared block device."""

    name: ClassVar[str] = 'block'

    def _check(self, st: os.stat_result) -> None:
        if not stat.S_ISBLK(st.st_mode):
            raise exception.StorageError(
                '%s is not a block device; use [broker] storage_connection '
                '= path for a file.' % self.path)

    def _write_probe(self, host_id: int | None) -> None:
        # Every byte of a shared device outside our slot belongs to
        # someone else, and our slot to the writer: the heartbeat writes
        # themselves prove the write path.
        return None


def load(conf: cfg.ConfigOpts) -> StorageConnection:
    """The configured storage connection."""
    conn_cls: type[StorageConnection] = plugins.plugin_class(
        NAMESPACE, conf.broker.storage_connection,
        '[broker] storage_connection')
    return conn_cls(conf)
