"""cpu_load: the 1-minute load average per CPU (from /proc/loadavg)."""

from __future__ import annotations

import os
from typing import ClassVar

from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor


def load_per_cpu(loadavg_text: str, cpus: int) -> float:
    """Pure: the 1-minute load of ``/proc/loadavg`` text divided by CPUs."""
    return float(loadavg_text.split()[0]) / max(1, cpus)


class CpuLoadMonitor(Submonitor):
    """1-minute load average divided by the number of usable CPUs."""

    name: ClassVar[str] = 'cpu_load'

    def measure(self) -> Reading:
        with open('/proc/loadavg', encoding='ascii') as f:
            text = f.read()
        cpus = len(os.sched_getaffinity(0))
        value = round(load_per_cpu(text, cpus), 3)
        return Reading(value, value < 1.0,
                       'load %s over %d cpus' % (text.split()[0], cpus))
