"""The file in which a broker records its lease holders, for its successor.

The workload lease belongs to the workload's process, not to the broker: a
broker killed under a running workload leaves the lease held.  So that the
next broker reports that holder instead of "no holder", every acquire and
release rewrites a small JSON file (``[fencing] holders_file``)::

    {"version": 1, "boot_id": "...",
     "holders": [{"pid": 4242, "start_time": 81234, "acquired_at": 912.5}]}

A restarted broker believes none of it blindly: :func:`process_gone` checks
each record against /proc (the pid runs, and is the same process: same
start time, same boot), and the fencer asks its authority as well (sanlock:
does that pid hold the lease?).

Considerations:

* The file is written whole under a temporary name and renamed over the old
  one (then the directory is synced), so a broker killed in the middle of a
  write leaves the old file or the new one, never a mix.
* ``acquired_at`` is ``time.monotonic()``, which on Linux is the
  system-wide CLOCK_MONOTONIC of the current boot; the boot id in the file
  says which boot that was.
* The default place is beside the broker's socket (``/run/heartbeat``): a
  directory that systemd keeps across broker restarts and that a reboot
  empties, which is exactly the life of a pid.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
import json
import os
from typing import Any

from oslo_config import cfg

from heartbeat.fencing.errors import FencingError
from heartbeat.workload import procs

FORMAT_VERSION = 1
BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id'


@dataclasses.dataclass(frozen=True)
class HolderRecord:
    """One process the broker acquired the workload lease for."""

    pid: int
    #: Clock ticks since boot (:func:`procs.start_time`); None if unknown.
    start_time: int | None
    #: ``time.monotonic()`` when the lease was acquired.
    acquired_at: float


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What a holders file says: its boot and its records."""

    boot_id: str | None = None
    holders: tuple[HolderRecord, ...] = ()


def boot_id() -> str | None:
    """The kernel's id of the current boot (None where there is none)."""
    try:
        with open(BOOT_ID_PATH, encoding='ascii') as f:
            return f.read().strip() or None
    except OSError:
        return None


def default_path(conf: cfg.ConfigOpts) -> str | None:
    """``[fencing] holders_file``, or the place beside the broker's socket.

    None when neither is known (a fencer used outside a broker): then
    nothing is recorded.
    """
    path: str | None = conf.fencing.holders_file
    if path:
        return path
    try:
        socket_path: str = conf.broker.socket_path
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return None
    return os.path.splitext(socket_path)[0] + '.holders'


def process_gone(record: HolderRecord, recorded_boot: str | None,
                 current_boot: str | None) -> str | None:
    """Why ``record``'s process is no longer the holder (None: it may be)."""
    if recorded_boot != current_boot:
        return ('the host restarted since process %d acquired the lease'
                % record.pid)
    if not procs.pid_alive(record.pid):
        return ('holder process %d exited while the broker was not '
                'watching' % record.pid)
    now = procs.start_time(record.pid)
    if record.start_time is not None and now != record.start_time:
        return ('pid %d now belongs to another process (started at tick %s, '
                'the holder at tick %d)' % (record.pid, now,
                                            record.start_time))
    return None


class HoldersFile:
    """Reads and atomically rewrites one holders file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> Recorded:
        """The file's content; empty when there is no file.

        Raises :class:`FencingError` for a file that cannot be read or
        does not fit the format (the caller decides what to do about it).
        """
        try:
            with open(self.path, encoding='utf-8') as f:
                data = json.load(f)
        except FileNotFoundError:
            return Recorded(boot_id=boot_id())
        except (OSError, ValueError) as err:
            raise FencingError('Cannot read the lease holders file %s: %s'
                               % (self.path, err)) from err
        try:
            return _decode(data)
        except (KeyError, TypeError, ValueError) as err:
            raise FencingError(
                'The lease holders file %s does not fit format %d: %s'
                % (self.path, FORMAT_VERSION, err)) from err

    def save(self, holders: Iterable[HolderRecord]) -> None:
        """Replace the file with ``holders``; FencingError on failure."""
        body = json.dumps({
            'version': FORMAT_VERSION, 'boot_id': boot_id(),
            'holders': [dataclasses.asdict(h) for h in holders],
        }, sort_keys=True).encode('utf-8')
        directory = os.path.dirname(os.path.abspath(self.path))
        tmp = '%s.%d.tmp' % (self.path, os.getpid())
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            try:
                os.unlink(tmp)
            except OSError:
                pass  # never created, or already renamed
            raise FencingError(
                'Cannot record the lease holders in %s: %s'
                % (self.path, err.strerror or err)) from err


def _decode(data: Any) -> Recorded:
    if not isinstance(data, dict):
        raise TypeError('not a JSON object')
    if data.get('version') != FORMAT_VERSION:
        raise ValueError('version %r' % data.get('version'))
    holders = []
    for item in data['holders']:
        start = item.get('start_time')
        holders.append(HolderRecord(
            pid=int(item['pid']),
            start_time=None if start is None else int(start),
            acquired_at=float(item['acquired_at'])))
    boot = data.get('boot_id')
    return Recorded(boot_id=str(boot) if boot is not None else None,
                    holders=tuple(holders))
