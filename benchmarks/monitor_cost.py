"""Cost of the monitor vs N: CPU per fetch+update cycle, memory per member.

Real slots in one metadata file of 2,000 slots, N of them written (N up to
2,000).  Between two cycles a quarter of the members beat (the steady state
of a monitor that polls at a quarter of report_interval); only the cycle is
timed, on the CPU clock of this thread.

* ``cycle_cpu_ms``: one fetch+update cycle of the monitor (read, decode,
  diff, deadline check, dispatch to one subscriber).
* baseline ``snapshot_cpu_ms``: the driver's snapshot alone, measured the
  same way in the same run; ``ratio`` = cycle / snapshot is what the
  monitor adds on top of reading.
* ``bytes_per_member``: traced Python memory of a watching observer
  (driver, repository, updater, subscriber) with 2,000 members minus the
  same with 100 members, divided by 1,900: the cost of one more tracked
  member, fixed overheads cancelled out.  Target: < 1 KiB.
  ``monitor_own_bytes_per_member`` counts only what the monitor itself
  allocates (repository entries and observations); the rest is the
  driver's cache of decoded records and the reports' contents.

Prints JSON.
"""

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
import tracemalloc

from heartbeat.drivers import storage
from heartbeat.drivers.storage import layout
from heartbeat import servicegroup
from heartbeat.testing.members import StorageCluster

GROUP = 'bench'
SLOTS = 2000
MONITOR_FILES = '/heartbeat/monitor/'
LIVENESS_FILE = '/heartbeat/liveness.py'


class Members:
    """N simulated members writing their slots."""

    def __init__(self, cluster, n):
        self.area = storage.open_area(cluster.make_conf())
        self.n = n
        self.seq = dict.fromkeys(range(1, n + 1), 0)
        for h in range(1, n + 1):
            self.beat(h)

    def beat(self, h):
        self.seq[h] += 1
        self.area.write_slot(layout.Slot(
            host_id=h, seq=self.seq[h], incarnation=7,
            timestamp=time.time(),
            payload=layout.host_payload('member-%d' % h, GROUP, 'running',
                                        3400, {'load': 0.25})))

    def beat_fraction(self, fraction):
        for h in random.sample(range(1, self.n + 1),
                               max(1, int(self.n * fraction))):
            self.beat(h)

    def close(self):
        self.area.close()


def new_cluster(workdir):
    return StorageCluster(tempfile.mkdtemp(dir=workdir, prefix='hb-cost-'),
                          report_interval=1.0, service_down_time=5.0,
                          max_hosts=SLOTS)


def cpu_per_cycle(n, runs, workdir):
    cluster = new_cluster(workdir)
    members = Members(cluster, n)
    conf = cluster.make_conf()
    sg = servicegroup.API(conf)
    # The loop must not read on its own: cycles are run (and timed) here.
    conf.set_override('poll_interval', 3600.0, group='heartbeat_monitor')
    sg.watch(GROUP, lambda event: None)
    cycle, snap = [], []
    try:
        for _ in range(runs):
            members.beat_fraction(0.25)
            start = time.thread_time()
            sg.refresh(GROUP)
            cycle.append(time.thread_time() - start)
            members.beat_fraction(0.25)
            start = time.thread_time()
            sg.driver.snapshot(GROUP)
            snap.append(time.thread_time() - start)
        assert len(sg.get_all(GROUP)) == n
    finally:
        sg.close()
        members.close()
    c, s = statistics.median(cycle), statistics.median(snap)
    return {'n': n, 'cycle_cpu_ms': round(c * 1e3, 3),
            'snapshot_cpu_ms': round(s * 1e3, 3),
            'ratio': round(c / s, 3) if s else None,
            'update_cpu_us_per_member': round((c - s) / n * 1e6, 3)}


def traced_observer_bytes(n, workdir):
    """Traced bytes of a watching observer: (everything, monitor's own).

    The monitor's own part is what was allocated in heartbeat/monitor/ and
    heartbeat/liveness.py; the rest is mostly the driver's cache of decoded
    records and the reports themselves (shared with the repository).
    """
    cluster = new_cluster(workdir)
    members = Members(cluster, n)
    conf = cluster.make_conf()
    # Only the reads made here: a read of the loop thread caught half-way
    # would count its whole-area buffer (4 KiB a slot) as kept memory.
    conf.set_override('poll_interval', 3600.0, group='heartbeat_monitor')
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        sg = servicegroup.API(conf)
        sub = sg.watch(GROUP, lambda event: None)
        for _ in range(3):
            members.beat_fraction(0.25)
            sg.refresh(GROUP)
        while len(sub.queue) or sub.queue.picture_remaining:
            time.sleep(0.01)
        assert len(sg.get_all(GROUP)) == n
        gc.collect()
        after = tracemalloc.take_snapshot()
        sg.close()
    finally:
        tracemalloc.stop()
        members.close()
    total = own = 0
    for diff in after.compare_to(before, 'filename'):
        total += diff.size_diff
        name = diff.traceback[0].filename
        if MONITOR_FILES in name or name.endswith(LIVENESS_FILE):
            own += diff.size_diff
    return total, own


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--n', type=int, nargs='+',
                        default=[10, 100, 500, 1000, 2000])
    parser.add_argument('--runs', type=int, default=30)
    parser.add_argument('--dir', default=None)
    args = parser.parse_args()
    cpu = [cpu_per_cycle(n, args.runs, args.dir) for n in args.n]
    small, large = 100, SLOTS
    t_small, own_small = traced_observer_bytes(small, args.dir)
    t_large, own_large = traced_observer_bytes(large, args.dir)
    per_member = (t_large - t_small) / (large - small)
    own_per_member = (own_large - own_small) / (large - small)
    print(json.dumps({
        'benchmark': 'monitor_cost',
        'slots': SLOTS,
        'cpu_per_cycle': cpu,
        'memory': {'observer_bytes_100_members': t_small,
                   'observer_bytes_2000_members': t_large,
                   'bytes_per_member': round(per_member, 1),
                   'monitor_own_bytes_per_member': round(own_per_member, 1),
                   'target_bytes': 1024,
                   'ratio_to_target': round(per_member / 1024, 3),
                   'monitor_own_ratio_to_target': round(
                       own_per_member / 1024, 3)}},
        indent=2))


if __name__ == '__main__':
    main()
