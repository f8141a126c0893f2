"""Sector-aligned I/O on the shared metadata file or block device.

Writes use ``O_DIRECT | O_DSYNC`` so a write is on the shared storage when it
returns; reads use ``O_DIRECT`` so they see other hosts' writes rather than
the page cache.  Where the filesystem refuses ``O_DIRECT`` (tmpfs, many FUSE
mounts) the volume logs why and falls back to cached reads and ``O_DSYNC``
writes, which is correct for hosts that share one kernel only.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import threading

from oslo_log import log as logging

from heartbeat import exception

LOG = logging.getLogger(__name__)

ALIGN = 4096


def aligned(size: int) -> mmap.mmap:
    """A zeroed, page-aligned buffer of at least ``size`` bytes."""
    return mmap.mmap(-1, max(ALIGN, -(-size // ALIGN) * ALIGN))


class Volume:
    """An open metadata area: aligned reads and writes by offset."""

    def __init__(self, path: str, direct_io: bool = True,
                 writable: bool = True, create_size: int | None = None,
                 option: str = '[heartbeat_storage] path') -> None:
        self.path = path
        self.option = option
        self.direct = False
        self._lock = threading.Lock()
        self._buffers: dict[int, mmap.mmap] = {}
        flags = (os.O_RDWR | os.O_DSYNC) if writable else os.O_RDONLY
        if create_size is not None:
            flags |= os.O_CREAT
        self.fd = self._open(flags, direct_io)
        try:
            st = os.fstat(self.fd)
            self.is_block = stat.S_ISBLK(st.st_mode)
            LOG.debug('Opened %s (%s, %s, %d bytes, %s).', path,
                      'block device' if self.is_block else 'file',
                      'read-write' if writable else 'read-only',
                      st.st_size, 'O_DIRECT' if self.direct else 'cached')
            if (create_size is not None and not self.is_block
                    and st.st_size < create_size):
                os.ftruncate(self.fd, create_size)
        except OSError as err:
            os.close(self.fd)
            raise self._error('prepare', err) from err

    def _open(self, flags: int, direct_io: bool) -> int:
        if direct_io:
            try:
                fd = os.open(self.path, flags | os.O_DIRECT, 0o660)
                self.direct = True
                return fd
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise self._error('open', err) from err
                LOG.warning('%s refuses O_DIRECT (%s); falling back to '
                            'cached reads and O_DSYNC writes, which is only '
                            'safe when every host shares this kernel.',
                            self.path, err.strerror)
        try:
            return os.open(self.path, flags, 0o660)
        except OSError as err:
            raise self._error('open', err) from err

    def _error(self, what: str, err: OSError) -> exception.StorageError:
        hint = ''
        if err.errno == errno.ENOENT:
            hint = (' Create it with "heartbeat-storage init" or fix %s.'
                    % self.option)
        elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = (' Give this user read/write access to it or fix %s.'
                    % self.option)
        return exception.StorageError(
            'Cannot %s metadata area %s: %s.%s'
            % (what, self.path, err.strerror or err, hint))

    def size(self) -> int:
        try:
            return os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as err:
            raise self._error('measure', err) from err

    def _buffer(self, size: int) -> mmap.mmap:
        buf = self._buffers.get(size)
        if buf is None:
            buf = self._buffers[size] = aligned(size)
        return buf

    def read(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (both sector multiples)."""
        with self._lock:
            buf = self._buffer(length)
            self._read_into(offset, buf, length)
            return buf[:length]

    def read_into(self, offset: int, buf: mmap.mmap, length: int) -> None:
        """Read ``length`` bytes at ``offset`` into the start of ``buf``.

        ``buf`` is an :func:`aligned` buffer of the caller's, so that a
        large read is neither copied nor allocated again.
        """
        with self._lock:
            self._read_into(offset, buf, length)

    def _read_into(self, offset: int, buf: mmap.mmap, length: int) -> None:
        view = memoryview(buf)[:length]
        try:
            got = os.preadv(self.fd, [view], offset)
        except OSError as err:
            raise self._error('read', err) from err
        finally:
            view.release()
        if got < length:
            raise exception.StorageError(
                'Metadata area %s is too short: read %d bytes at offset '
                '%d, expected %d. Re-run "heartbeat-storage init" or fix '
                '%s.' % (self.path, got, offset, length, self.option))

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` (a sector multiple) at ``offset``, durably."""
        with self._lock:
            buf = self._buffer(len(data))
            buf[:len(data)] = data
            view = memoryview(buf)[:len(data)]
            try:
                done = os.pwrite(self.fd, view, offset)
            except OSError as err:
                raise self._error('write', err) from err
            finally:
                view.release()
            if done != len(data):
                raise exception.StorageError(
                    'Short write to metadata area %s at offset %d (%d of %d '
                    'bytes); check the storage.'
                    % (self.path, offset, done, len(data)))

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            for buf in self._buffers.values():
                buf.close()
            self._buffers.clear()
