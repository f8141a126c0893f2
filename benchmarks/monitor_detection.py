"""Detection latency of the monitor: kill simulated members, time the Down.

N simulated members (default N = 10, 100, 1000) write real slots of one
metadata file from a separate writer process, each at its own phase of
report_interval, exactly as member processes would.  An observer in this
process watches the group.  Then a sample of members stops beating, each
at a random moment, and for each the benchmark measures::

    latency = Down event received - last beat written - service_down_time

(wall clock of one machine; the last beat's time is the writer's stamp in
the slot, taken just before the write).  Baseline, in the same run and on
the same file: a nova-style observer that calls get_all() every
report_interval and notices the Down only when it asks.  ``ratio_p99`` is
the monitor's p99 over the baseline's; ``false_downs`` counts members
declared down that never stopped.  Prints JSON.
"""

import argparse
import json
import math
import multiprocessing
import random
import tempfile
import threading
import time

from oslo_config import cfg

from heartbeat import conf as hb_conf
from heartbeat.drivers import storage
from heartbeat.drivers.storage import layout
from heartbeat.model import Status
from heartbeat import servicegroup
from heartbeat.testing.members import StorageCluster

GROUP = 'bench'
PHASES = 10


def writer(config_path, n, interval, conn):
    """Beat slots 1..n until told to stop some of them (child process)."""
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf(['--config-file', config_path], project='heartbeat')
    area = storage.open_area(conf)
    incarnation = random.getrandbits(62)
    seq = dict.fromkeys(range(1, n + 1), 0)
    stop_at = {}
    tick = interval / PHASES
    next_tick = time.monotonic()
    phase = 0
    while True:
        if conn.poll():
            msg = conn.recv()
            if msg[0] == 'exit':
                break
            _, hosts, window = msg
            now = time.monotonic()
            for h in hosts:
                stop_at[h] = now + random.uniform(0, window)
        now = time.monotonic()
        for h in range(1 + phase, n + 1, PHASES):
            if h in stop_at and now >= stop_at[h]:
                continue
            seq[h] += 1
            area.write_slot(layout.Slot(
                host_id=h, seq=seq[h], incarnation=incarnation,
                timestamp=time.time(),
                payload=layout.host_payload('m%d' % h, GROUP, 'ok', None,
                                            {})))
        phase = (phase + 1) % PHASES
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.monotonic()))
    area.close()
    conn.send('done')


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    # Nearest rank: the smallest value with p% of the samples at or below.
    rank = math.ceil(p / 100 * len(values)) - 1
    rank = max(0, min(len(values) - 1, rank))
    return round(values[rank], 4)


def summary(values):
    return {'p50_s': pct(values, 50), 'p99_s': pct(values, 99),
            'max_s': pct(values, 100), 'samples': len(values)}


class NaivePoller:
    """The baseline: ask get_all() every report_interval, note DOWNs."""

    def __init__(self, conf, interval):
        self.sg = servicegroup.API(conf)
        self.interval = interval
        self.seen_down = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(self.interval):
            now = time.time()
            for m in self.sg.get_all(GROUP):
                if (m.status is Status.DOWN
                        and m.member_id not in self.seen_down):
                    self.seen_down[m.member_id] = (now, m.report.written_at)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sg.close()


def run(n, interval, down_time, sample, workdir):
    cluster = StorageCluster(workdir, report_interval=interval,
                             service_down_time=down_time, max_hosts=n)
    ctx = multiprocessing.get_context('spawn')
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=writer,
                       args=(cluster.config_path, n, interval, child))
    proc.start()
    downs = {}
    ups = set()
    lock = threading.Condition()

    def on_event(event):
        with lock:
            if event.kind == 'up':
                ups.add(event.member_id)
            elif event.kind == 'down' and event.member_id not in downs:
                downs[event.member_id] = (time.time(),
                                          event.report.written_at)
            lock.notify_all()

    try:
        time.sleep(interval)
        naive = NaivePoller(cluster.make_conf(), interval)
        sg = servicegroup.API(cluster.make_conf())
        sg.watch(GROUP, on_event)
        naive.thread.start()
        with lock:
            lock.wait_for(lambda: len(ups) == n, timeout=30 + n * 0.01)
        up_count = len(ups)
        killed = sorted(random.sample(range(1, n + 1), sample))
        names = {'m%d' % h for h in killed}
        parent.send(('kill', killed, 2 * interval))
        with lock:
            lock.wait_for(lambda: names <= set(downs),
                          timeout=down_time + 2 * interval + 10)
        time.sleep(2 * interval)   # let the baseline catch up
        mon = [t - w - down_time for m, (t, w) in downs.items()
               if m in names]
        base = [t - w - down_time for m, (t, w) in naive.seen_down.items()
                if m in names]
        false_downs = len(set(downs) - names)
        stats = sg.monitor.stats
        sg.close()
        naive.close()
    finally:
        parent.send(('exit',))
        proc.join(30)
    monitor = summary(mon)
    baseline = summary(base)
    ratio = (round(monitor['p99_s'] / baseline['p99_s'], 3)
             if monitor['p99_s'] and baseline['p99_s'] else None)
    return {'n': n, 'members_seen_up': up_count, 'killed': sample,
            'detected': len(mon), 'false_downs': false_downs,
            'monitor': monitor, 'baseline_get_all_poll': baseline,
            'ratio_p99': ratio, 'monitor_cycles': stats.cycles,
            'monitor_avg_cycle_cpu_ms': round(
                stats.total_cpu / max(1, stats.cycles) * 1e3, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--n', type=int, nargs='+', default=[10, 100, 1000])
    parser.add_argument('--report-interval', type=float, default=0.5)
    parser.add_argument('--service-down-time', type=float, default=2.0)
    parser.add_argument('--dir', default=None,
                        help='Directory for the metadata files (default: '
                             'a temporary directory).')
    args = parser.parse_args()
    results = []
    for n in args.n:
        sample = max(5, min(50, n // 10))
        workdir = tempfile.mkdtemp(dir=args.dir, prefix='hb-mon-')
        results.append(run(n, args.report_interval,
                           args.service_down_time, sample, workdir))
    print(json.dumps({
        'benchmark': 'monitor_detection',
        'report_interval_s': args.report_interval,
        'service_down_time_s': args.service_down_time,
        'poll_interval_s': args.report_interval / 4,
        'results': results}, indent=2))


if __name__ == '__main__':
    main()
