"""A FUSE passthrough filesystem whose I/O can be stalled on demand.

::

    with PausableMount(tmpdir) as mount:
        path = os.path.join(mount.mountpoint, 'metadata')
        ...                      # use path like any file
        with mount.paused():     # every operation on the mount blocks ...
            ...
        # ... and completes when the block is lifted

The filesystem runs in its own process (``python -m heartbeat.cluster.fuse
SOURCE MOUNTPOINT CONTROL``) and mirrors SOURCE.  While the CONTROL file
exists, every operation (stat, open, read, write, sync, ...) waits, the way
I/O to a lost NFS server or SAN path hangs; removing it lets them finish.
Files are opened with FUSE direct I/O so reads reach the filesystem instead
of the page cache.  Needs /dev/fuse, fusermount3 (Debian package fuse3) and
mfusepy (``pip install heartbeat[fuse]``): :func:`missing` says what is
not there; a mount that cannot be made raises
:class:`~heartbeat.cluster.errors.ClusterError`.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from heartbeat.cluster.errors import ClusterError
from heartbeat.cluster import lifecycle

POLL = 0.005


class Passthrough:
    """FUSE operations mirroring ``source``, waiting while stalled."""

    def __init__(self, source: str, control: str) -> None:
        self.source = source
        self.control = control

    def _wait(self) -> None:
        while os.path.exists(self.control):
            time.sleep(POLL)

    def _full(self, path: str) -> str:
        return os.path.join(self.source, path.lstrip('/'))

    # The methods below are called by mfusepy; each waits out a stall.

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        self._wait()
        st = os.lstat(self._full(path))
        return {key: getattr(st, key) for key in (
            'st_atime', 'st_ctime', 'st_gid', 'st_mode', 'st_mtime',
            'st_nlink', 'st_size', 'st_uid', 'st_blocks', 'st_blksize')}

    def readdir(self, path: str, fh: Any) -> list[str]:
        self._wait()
        return ['.', '..', *os.listdir(self._full(path))]

    def access(self, path: str, amode: int) -> int:
        self._wait()
        if not os.access(self._full(path), amode):
            return -errno.EACCES
        return 0

    def open(self, path: str, fi: Any) -> int:
        self._wait()
        flags = fi.flags & ~getattr(os, 'O_DIRECT', 0)
        fi.fh = os.open(self._full(path), flags)
        fi.direct_io = 1
        return 0

    def create(self, path: str, mode: int, fi: Any) -> int:
        self._wait()
        flags = (fi.flags | os.O_CREAT) & ~getattr(os, 'O_DIRECT', 0)
        fi.fh = os.open(self._full(path), flags, mode)
        fi.direct_io = 1
        return 0

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        self._wait()
        return os.pread(fi.fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        self._wait()
        return os.pwrite(fi.fh, data, offset)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        self._wait()
        os.truncate(self._full(path), length)
        return 0

    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        self._wait()
        os.fsync(fi.fh)
        return 0

    def flush(self, path: str, fi: Any) -> int:
        self._wait()
        return 0

    def release(self, path: str, fi: Any) -> int:
        os.close(fi.fh)
        return 0

    def unlink(self, path: str) -> int:
        self._wait()
        os.unlink(self._full(path))
        return 0

    def rename(self, old: str, new: str) -> int:
        self._wait()
        os.rename(self._full(old), self._full(new))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self._wait()
        os.chmod(self._full(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self._wait()
        os.chown(self._full(path), uid, gid)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        self._wait()
        os.utime(self._full(path), times)
        return 0

    def statfs(self, path: str) -> dict[str, Any]:
        self._wait()
        st = os.statvfs(self._full(path))
        return {key: getattr(st, key) for key in (
            'f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail',
            'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}


def serve(source: str, mountpoint: str, control: str) -> None:
    """Mount and serve until unmounted (blocks)."""
    import mfusepy

    class Operations(Passthrough, mfusepy.Operations):  # type: ignore[misc]
        """mfusepy operations of the passthrough."""

    def wrap(func: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return func(*args)
            except OSError as err:
                raise mfusepy.FuseOSError(err.errno or errno.EIO) from err
        return call

    ops = Operations(source, control)
    for name in ('getattr', 'readdir', 'open', 'create', 'read', 'write',
                 'truncate', 'fsync', 'unlink', 'rename', 'chmod', 'chown',
                 'utimens', 'statfs'):
        setattr(ops, name, wrap(getattr(ops, name)))
    mfusepy.FUSE(ops, mountpoint, foreground=True, nothreads=False,
                 raw_fi=True)


def missing() -> str | None:
    """Why a stallable mount cannot be made here (None: it can)."""
    if not os.path.exists('/dev/fuse') or not shutil.which('fusermount3'):
        return ('FUSE is not usable here: need /dev/fuse and fusermount3 '
                '(Debian package fuse3)')
    if importlib.util.find_spec('mfusepy') is None:
        return 'mfusepy is not installed: pip install heartbeat[fuse]'
    return None


class PausableMount(lifecycle.Pausable):
    """A passthrough mount in ``workdir``; see the module docstring."""

    start_timeout = 15.0

    def __init__(self, workdir: str, source: str | None = None) -> None:
        self.workdir = os.path.abspath(workdir)
        #: The mirrored directory (default: ``backing`` in ``workdir``);
        #: several mounts of one source act as one shared storage seen
        #: through paths that stall apart.
        self.source = (os.path.abspath(source) if source
                       else os.path.join(self.workdir, 'backing'))
        self.mountpoint = os.path.join(self.workdir, 'mnt')
        self.control = os.path.join(self.workdir, 'stalled')
        self.log_path = os.path.join(self.workdir, 'fuse.log')
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        os.makedirs(self.source, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        self.resume()
        reason = missing()
        if reason is not None:
            raise ClusterError(reason + '.')
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                [sys.executable, '-m', 'heartbeat.cluster.fuse',
                 self.source, self.mountpoint, self.control],
                stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if os.path.ismount(self.mountpoint):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            log_text = f.read()[-2000:]
        raise ClusterError('FUSE passthrough on %s did not mount; log:\n%s'
                           % (self.mountpoint, log_text))

    def pause(self) -> None:
        """Make every operation on the mount block until resume()."""
        with open(self.control, 'w', encoding='ascii') as f:
            f.write('stalled\n')

    def resume(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.control)

    def stop(self, timeout: float = 10.0) -> None:
        """Lift any stall and unmount (lazily if files are still open)."""
        self.resume()
        if os.path.ismount(self.mountpoint):
            subprocess.run(['fusermount3', '-u', '-z', self.mountpoint],
                           capture_output=True, check=False, timeout=timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


if __name__ == '__main__':
    serve(*sys.argv[1:4])
