"""CPU of the monitor's fold vs N: incremental reads against two baselines.

N members (1,000 / 10,000 / 100,000) beat every 10 s; the monitor reads
once a second on a simulated clock, for longer than service_down_time
(60 s), so that deadlines come due: members that beat since they were
queued are queued again, and the 1 % of members that stopped at the start
go down.  One cycle is what the fetch loop does with a read: ``apply``,
``expire``, ``next_deadline`` (exact up to the next poll).  Reports are
built before each cycle and not timed (the driver's decoding is measured
by storage_bench.py and redis_scale.py).

Three ways, same members and beats, same run:

* ``incremental``: reads list only the members that beat (a driver with
  INCREMENTAL), deadlines from the heap; this should cost O(changes);
* ``complete``: every read lists every member (a driver without
  INCREMENTAL, its unchanged records handed back as the same objects, as
  the storage driver's decode cache does): O(members) by nature;
* ``walk``: incremental reads, but deadlines checked and the next one
  found by looking at every member on every cycle, as the updater did
  before the heap.

The first 10 cycles (every member's first change, each a MemberUp) are the
warm-up and are not counted.  Prints JSON.
"""

import argparse
import json
import random
import statistics
import time

from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater

GROUP = 'compute'
BEAT_PERIOD = 10
CYCLE = 1.0
DOWN_TIME = 60.0
STOPPED = 0.01
WARM_UP = BEAT_PERIOD
WATCHED = (Status.UNKNOWN, Status.UP)


def report(i, seq):
    return Report(member_id='member-%06d' % i, group=GROUP, seq=seq,
                  incarnation=1000 + i, state='enabled', score=3400,
                  payload={'host': 'host-%06d' % i},
                  location='redis %s/member-%06d' % (GROUP, i))


def walk_next_deadline(updater):
    """The loop's wake-up time before the heap: look at every member."""
    best = None
    for entry in updater.repository.entries(GROUP).values():
        if entry.announced in WATCHED:
            at = entry.last_change + updater.down_time
            if best is None or at < best:
                best = at
    return best


def walk_expire(updater, now):
    """The deadline check before the heap: judge every member."""
    down = 0
    for entry in list(updater.repository.entries(GROUP).values()):
        if entry.announced not in WATCHED:
            continue
        if now - entry.last_change < updater.down_time:
            continue
        if entry.status(now, updater.down_time) is Status.DOWN:
            entry.announced = Status.DOWN
            down += 1
    return down


class Run:
    """One way of folding, its updater and its measurements."""

    def __init__(self, way, n):
        self.way = way
        self.updater = Updater(Repository(DOWN_TIME, wall_clock=lambda: 0.0))
        self.current = [report(i, 1) for i in range(n)]
        self.cpu = []
        self.downs = {}

    def cycle(self, now, changed, measured):
        for i, rep in changed:
            self.current[i] = rep
        if self.way == 'complete':
            snap = Snapshot(tuple(self.current))
        else:
            snap = Snapshot(tuple(rep for _, rep in changed), complete=False)
        updater = self.updater
        start = time.process_time()
        updater.apply(snap, now, 0.0, GROUP)
        if self.way == 'walk':
            downs = walk_expire(updater, now)
            walk_next_deadline(updater)
        else:
            events = updater.expire(now, 0.0, [GROUP])
            downs = len(events)
            for event in events:
                self.downs[event.member_id] = now
            updater.next_deadline([GROUP], horizon=now + CYCLE)
        spent = time.process_time() - start
        if measured:
            self.cpu.append(spent)
        return downs

    def summary(self, changed_per_cycle):
        mean = statistics.mean(self.cpu)
        return {
            'cpu_ms_per_cycle_mean': round(mean * 1e3, 3),
            'cpu_ms_per_cycle_p50': round(
                statistics.median(self.cpu) * 1e3, 3),
            'cpu_ms_per_cycle_max': round(max(self.cpu) * 1e3, 3),
            'us_per_changed_report': round(
                mean / changed_per_cycle * 1e6, 3),
            'heap_entries': len(self.updater.deadlines),
        }


def run_size(n, cycles, seed):
    rnd = random.Random(seed)
    stopped = set(rnd.sample(range(n), max(1, int(n * STOPPED))))
    seqs = [1] * n
    runs = [Run(way, n) for way in ('incremental', 'complete', 'walk')]
    for r in runs:
        r.cycle(0.0, [(i, r.current[i]) for i in range(n)], False)
    downs = dict.fromkeys((r.way for r in runs), 0)
    last_beat = dict.fromkeys(stopped, 0.0)
    for c in range(1, cycles + 1):
        now = c * CYCLE
        changed = []
        for i in range(c % BEAT_PERIOD, n, BEAT_PERIOD):
            if i not in stopped:
                seqs[i] += 1
                changed.append((i, report(i, seqs[i])))
        for r in runs:
            downs[r.way] += r.cycle(now, changed, c > WARM_UP)
    per_cycle = n / BEAT_PERIOD
    inc, full, walk = (r.summary(per_cycle) for r in runs)
    late = [runs[0].downs[i] - last_beat[int(i.split('-')[1])] - DOWN_TIME
            for i in runs[0].downs]
    for r in runs:
        # Every way must reach the same verdicts: the stopped members down.
        members = r.updater.repository.members(GROUP, cycles * CYCLE)
        assert len(members) == n
        assert {m.member_id for m in members if m.status is Status.DOWN} == {
            'member-%06d' % i for i in stopped}, r.way
    assert downs['incremental'] == downs['walk'] == downs['complete']
    return {
        'n': n,
        'changed_reports_per_cycle': per_cycle,
        'incremental': inc, 'complete': full, 'walk': walk,
        'complete_over_incremental': round(
            full['cpu_ms_per_cycle_mean'] / inc['cpu_ms_per_cycle_mean'], 2),
        'walk_over_incremental': round(
            walk['cpu_ms_per_cycle_mean'] / inc['cpu_ms_per_cycle_mean'], 2),
        'downs': downs['incremental'],
        'downs_expected': len(stopped),
        'down_delay_s_max': round(max(late), 3) if late else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--n', type=int, nargs='+',
                        default=[1000, 10000, 100000])
    parser.add_argument('--cycles', type=int, default=int(DOWN_TIME) + 15)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args()
    print(json.dumps({
        'benchmark': 'monitor_fold',
        'beat_period_s': BEAT_PERIOD, 'cycle_s': CYCLE,
        'service_down_time_s': DOWN_TIME, 'stopped_fraction': STOPPED,
        'warm_up_cycles': WARM_UP,
        'sizes': [run_size(n, args.cycles, args.seed) for n in args.n]},
        indent=2))


if __name__ == '__main__':
    main()
