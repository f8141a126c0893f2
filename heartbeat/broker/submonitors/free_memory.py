"""free_memory: memory available to new work, in MiB (MemAvailable)."""

from __future__ import annotations

from typing import ClassVar

from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor
from heartbeat import exception


def meminfo_mib(text: str) -> tuple[int, int]:
    """Pure: (MemAvailable, MemTotal) in MiB from /proc/meminfo text."""
    fields = {}
    for line in text.splitlines():
        key, _, rest = line.partition(':')
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0])
    try:
        return fields['MemAvailable'] // 1024, fields['MemTotal'] // 1024
    except KeyError as err:
        raise exception.HeartbeatError(
            '/proc/meminfo has no %s line; this kernel is too old for the '
            'free_memory submonitor.' % err) from err


class FreeMemoryMonitor(Submonitor):
    """MiB of MemAvailable; ok above 5 percent of MemTotal."""

    name: ClassVar[str] = 'free_memory'

    def measure(self) -> Reading:
        with open('/proc/meminfo', encoding='ascii') as f:
            available, total = meminfo_mib(f.read())
        return Reading(available, available * 20 > total,
                       '%d of %d MiB available' % (available, total))
