"""False Down and detection time: service_down_time alone vs phi_threshold.

The jitter model of the fault suite (tests/reliability): members report
every ``report_interval`` (0.5 s) times a factor uniform in 1 +- 0.2,
service_down_time is 3 s, and the observer reads every report_interval / 4,
as the monitor's default poll.  The observer is the real one, run on a
virtual clock: ``Repository`` (with or without ``phi_threshold``) and the
monitor's ``Updater`` fed the reads, its MemberDown events counted.  Three
runs per detector, each on the same seeded beats:

* ``steady``: every member beats for ``--seconds``; any MemberDown is
  false (reported per member-hour);
* ``pause``: the backend stops answering for 2 s (the fault suite's
  SIGSTOP, below service_down_time - report_interval): the reads see no
  change while it lasts; members judged Down are false Downs;
* ``crash``: every member stops at a random time; detection is the time
  from its last beat to its MemberDown (p50, p99, max).

Prints one JSON object::

    python benchmarks/suspicion_bench.py [--members 200] [--seconds 600]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

from heartbeat.model import MemberDown
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater

REPORT_INTERVAL = 0.5
DOWN_TIME = 3.0
JITTER = 0.2
POLL = REPORT_INTERVAL / 4
PAUSE = 2.0
THRESHOLDS = (None, 3.0, 5.0, 8.0, 12.0)
GROUP = 'g'


def beats(rng: random.Random, until: float) -> list[float]:
    """Beat times of one member from a random phase up to ``until``."""
    at = rng.uniform(0.0, REPORT_INTERVAL)
    out = []
    while at < until:
        out.append(at)
        at += REPORT_INTERVAL * rng.uniform(1 - JITTER, 1 + JITTER)
    return out


def observe(schedule: dict[str, list[float]], end: float,
            threshold: float | None,
            blind: tuple[float, float] | None = None) -> list[MemberDown]:
    """The MemberDown events of an observer polling ``schedule``.

    ``blind``: while the backend does not answer, reads show nothing new
    (the beats written meanwhile are read once it answers again).
    """
    repo = Repository(DOWN_TIME, wall_clock=lambda: 0.0,
                      phi_threshold=threshold)
    updater = Updater(repo)
    cursor = dict.fromkeys(schedule, 0)
    downs: list[MemberDown] = []
    polls = int(end / POLL)
    for step in range(1, polls + 1):
        now = step * POLL
        reports = []
        if blind is None or not blind[0] <= now < blind[1]:
            for member, times in schedule.items():
                seen = cursor[member]
                while seen < len(times) and times[seen] <= now:
                    seen += 1
                if seen != cursor[member]:
                    cursor[member] = seen
                    reports.append(Report(member_id=member, group=GROUP,
                                          seq=seen, incarnation=1))
        events = updater.apply(Snapshot(tuple(reports), complete=False),
                               now, 0.0, GROUP)
        events += updater.expire(now, 0.0, [GROUP])
        downs += [e for e in events if isinstance(e, MemberDown)]
    return downs


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(members: int, seconds: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ids = ['m%04d' % i for i in range(members)]
    steady = {m: beats(rng, seconds) for m in ids}
    # Warm up for 60 s so that every rhythm is set before the fault.
    pause_at = 60.0 + rng.uniform(0.0, REPORT_INTERVAL)
    paused = {m: beats(rng, pause_at + 30.0) for m in ids}
    crash = {}
    for m in ids:
        stop = 60.0 + rng.uniform(0.0, 60.0)
        crash[m] = beats(rng, stop)
    rows = {}
    for threshold in THRESHOLDS:
        name = 'service_down_time' if threshold is None else (
            'phi_threshold=%g' % threshold)
        false_steady = observe(steady, seconds, threshold)
        false_pause = observe(paused, pause_at + 30.0, threshold,
                              blind=(pause_at, pause_at + PAUSE))
        downs = observe(crash, 130.0 + DOWN_TIME + 1.0, threshold)
        first = {}
        for event in downs:
            first.setdefault(event.member_id, event.observed_at)
        late = [first[m] - crash[m][-1] for m in ids if m in first]
        rows[name] = {
            'false_down_per_member_hour': round(
                len(false_steady) / (members * seconds / 3600.0), 3),
            'false_down_in_pause_members': len(
                {e.member_id for e in false_pause}),
            'detected': len(late),
            'detection_p50_s': round(_quantile(late, 0.5), 3),
            'detection_p99_s': round(_quantile(late, 0.99), 3),
            'detection_max_s': round(max(late), 3),
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--members', type=int, default=200,
                        help='members per run')
    parser.add_argument('--seconds', type=float, default=600.0,
                        help='virtual seconds of the steady run')
    parser.add_argument('--seed', type=int, default=1,
                        help='seed of the beats (same for every detector)')
    args = parser.parse_args(argv)
    if args.members < 1 or args.seconds < 120:
        parser.error('--members must be positive and --seconds at least '
                     '120')
    print(json.dumps({
        'model': {'report_interval': REPORT_INTERVAL,
                  'service_down_time': DOWN_TIME, 'jitter': JITTER,
                  'poll_interval': POLL, 'pause_s': PAUSE,
                  'members': args.members, 'steady_s': args.seconds},
        'detectors': run(args.members, args.seconds, args.seed),
    }, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
