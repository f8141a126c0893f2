"""Facts about local processes, read from /proc (Linux).

Shared by the fencers (is a lease holder still there?) and the workload
launcher (is the process in the pid file still the one we started?).
"""

from __future__ import annotations

import os


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii',
                  errors='replace') as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: split after the
    # last ')'.
    return text.rpartition(')')[2].split()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return fields is not None and bool(fields) and fields[0] not in (
        'Z', 'X')


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (None if gone).

    Together with the pid it names one process for the life of the
    machine: a pid reused by another process has another start time.
    """
    try:
        fields = _stat_fields(pid)
    except OSError:
        return None
    if not fields or len(fields) < 20:
        return None
    # Field 22 of stat(5); fields[0] is field 3 (the state).
    try:
        return int(fields[19])
    except ValueError:
        return None
