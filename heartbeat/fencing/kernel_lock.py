"""The kernel lock behind the flock fencer: take it, see who holds it.

The lease is a POSIX record lock (``fcntl(F_SETLK)``, a write lock on the
whole file) on the lease file, taken by the workload's own process through
the launcher (:mod:`heartbeat.workload.holder`).  Such a lock belongs to a
process: the kernel drops it when that process ends, however it ends, and a
child never inherits it.  So while the lock is held the workload runs, and
once its process is gone any other host may take it.

The broker does not take the lock; it asks the kernel who holds it, from
``/proc/locks``, whose lines read::

    1: POSIX  ADVISORY  WRITE 4242 fe:00:2146362 0 EOF
    1: -> POSIX  ADVISORY  WRITE 4343 fe:00:2146362 0 EOF   (a waiter)

(the device's major and minor in hex, then the inode in decimal).

Considerations:

* One kernel only: the lock is exact between processes of one machine (and
  of containers sharing its kernel and the file).  Network filesystems
  implement record locks with servers and leases of their own, or not at
  all, so :func:`refusal` refuses them by their type in ``/proc/mounts``.
* Any ``close()`` of any descriptor of the lease file by the holder drops
  its lock (POSIX semantics): only the launcher opens the file, and the
  workload never learns its name.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
import errno
import fcntl
import os
import re

PROC_LOCKS = '/proc/locks'
PROC_MOUNTS = '/proc/mounts'
_OCTAL = re.compile(r'\\([0-7]{3})')

#: Filesystem types on which a kernel lock is not exact on one machine.
NETWORK_FILESYSTEMS = frozenset({
    'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'ceph', 'glusterfs', 'gfs2',
    'ocfs2', 'afs', '9p', 'lustre', 'beegfs', 'gpfs', 'virtiofs'})


@dataclasses.dataclass(frozen=True)
class LockEntry:
    """One POSIX write lock granted on a file (no waiter)."""

    pid: int
    device: tuple[int, int]
    inode: int


def parse_locks(lines: Iterable[str]) -> list[LockEntry]:
    """The granted POSIX write locks among ``/proc/locks`` lines."""
    out = []
    for line in lines:
        words = line.split()
        if len(words) < 6 or words[1] == '->':
            continue
        kind, access, pid, where = words[1], words[3], words[4], words[5]
        if kind != 'POSIX' or access != 'WRITE':
            continue
        parts = where.split(':')
        if len(parts) != 3:
            continue
        try:
            out.append(LockEntry(int(pid), (int(parts[0], 16),
                                            int(parts[1], 16)),
                                 int(parts[2])))
        except ValueError:
            continue
    return out


def holder(path: str) -> int | None:
    """The pid holding the write lock on ``path`` (None: nobody).

    Raises OSError when the file or ``/proc/locks`` cannot be read.
    """
    st = os.stat(path)
    key = ((os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino)
    with open(PROC_LOCKS, encoding='ascii', errors='replace') as f:
        entries = parse_locks(f)
    for entry in entries:
        if (entry.device, entry.inode) == key:
            return entry.pid
    return None


def filesystem_of(path: str, mounts: Iterable[str]) -> str | None:
    """The type of the filesystem holding ``path``, from mount lines."""
    real = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for line in mounts:
        words = line.split()
        if len(words) < 3:
            continue
        # /proc/mounts escapes space, tab, newline and backslash as
        # octal; anything else (UTF-8 names) is as it is.
        point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), words[1])
        inside = (real == point or point == '/'
                  or real.startswith(point.rstrip('/') + '/'))
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), words[2])
    return None if best is None else best[1]


def refusal(path: str, mounts: Iterable[str] | None = None) -> str | None:
    """Why a kernel lock on ``path`` would not be exact (None: it is)."""
    if mounts is None:
        try:
            with open(PROC_MOUNTS, encoding='utf-8', errors='replace') as f:
                mounts = f.readlines()
        except OSError as err:
            return 'cannot read %s to check its filesystem: %s' % (
                PROC_MOUNTS, err.strerror or err)
    directory = os.path.dirname(os.path.abspath(path)) or '/'
    fstype = filesystem_of(directory, mounts)
    if fstype is None:
        return 'cannot tell the filesystem of %s' % directory
    if fstype in NETWORK_FILESYSTEMS or fstype.startswith('fuse'):
        return ('%s is on a %s filesystem: a kernel lock is exact on one '
                'machine only, and this filesystem may be shared with '
                'others or keep its locks elsewhere' % (directory, fstype))
    return None


def take(path: str) -> tuple[int | None, int | None]:
    """Take the write lock on ``path`` for this process, without waiting.

    Returns ``(fd, None)`` once held (keep the descriptor open: closing it
    drops the lock), or ``(None, pid)`` when process ``pid`` holds it
    (None if it could not be told).  Raises OSError for other failures.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        try:
            return None, holder(path)
        except OSError:
            return None, None
    return fd, None
