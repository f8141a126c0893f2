"""A workload that proves where and when it ran, and the check of its log.

Run as ``python -m heartbeat.testing.workload --log PATH --name HOST``: it
appends ``HOST PID WALLTIME`` to ``PATH`` every ``--tick`` seconds (one
``O_APPEND`` write per line, so lines of processes on one machine never
mix) until it is killed; SIGTERM ends it cleanly.  :func:`intervals` turns
such a log into one ``(host, pid, first, last)`` run per process (a
process killed by SIGKILL simply stops ticking) and :func:`overlaps` lists
the pairs of runs of different processes that overlap in time: a
protected workload must have none.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
import os
import signal
import sys
import time
import types


@dataclasses.dataclass(frozen=True)
class Run:
    """One process's time running the workload, from its ticks."""

    host: str
    pid: int
    first: float
    last: float


def intervals(path: str) -> list[Run]:
    """The runs in the tick log ``path``, by start time."""
    runs: dict[tuple[str, int], list[float]] = {}
    try:
        with open(path, encoding='ascii', errors='replace') as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue  # a torn last line of a killed writer
        try:
            key = (parts[0], int(parts[1]))
            at = float(parts[2])
        except ValueError:
            continue
        span = runs.setdefault(key, [at, at])
        span[0] = min(span[0], at)
        span[1] = max(span[1], at)
    return sorted((Run(h, p, s[0], s[1]) for (h, p), s in runs.items()),
                  key=lambda r: r.first)


def overlaps(runs: Sequence[Run],
             slack: float = 0.0) -> list[tuple[Run, Run]]:
    """Pairs of runs of different processes that overlap by > ``slack``."""
    out = []
    ordered = sorted(runs, key=lambda r: r.first)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b.first - slack > a.last:
                break
            if (a.host, a.pid) != (b.host, b.pid):
                out.append((a, b))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m heartbeat.testing.workload',
        description='Append "HOST PID TIME" to a log every tick until '
                    'killed.')
    parser.add_argument('--log', required=True, help='The shared tick log.')
    parser.add_argument('--name', required=True, help='This host\'s name.')
    parser.add_argument('--tick', type=float, default=0.1,
                        help='Seconds between two ticks (default 0.1).')
    args = parser.parse_args(argv)
    stop = False

    def on_term(signum: int, frame: types.FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while not stop:
            os.write(fd, ('%s %d %.3f\n' % (args.name, os.getpid(),
                                            time.time())).encode())
            time.sleep(args.tick)
    finally:
        os.close(fd)
    return 0


if __name__ == '__main__':
    sys.exit(main())
