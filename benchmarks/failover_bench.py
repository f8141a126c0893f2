"""Failover and migration times of real HA hosts, printed as JSON.

Starts ``--hosts`` real hosts (a sanlock daemon with io_timeout 1, a
heartbeat-broker and a heartbeat-agent each; ``heartbeat.testing.agent``)
with a workload that ticks into a shared log every 0.1 s, then measures,
from the tick log and the brokers' status:

- ``cold_start``: agents launched -> the workload's first tick (includes
  the sanlock lockspace join);
- ``migration`` (``--migrations`` runs): ``heartbeat-maintenance --mode
  local`` on the running host -> first tick elsewhere, split into the stop
  (request -> last tick here) and the start (-> first tick there).  Target:
  <= 3 loops + stop + start;
- ``host_death`` (``--deaths`` runs): kill -9 of every process of the
  running host -> first tick elsewhere, split into sanlock's host-dead time
  (-> the new runner's last acquire that found the lease busy; the lease
  was free after it) and ours (-> first tick: an upper bound of decision +
  start).  Target: ours <= 2 loops + workload start;
- ``agent_loop_cpu_ms``: CPU of each agent process tree per loop, idle and
  running;
- ``flock_failover`` (``--flock-runs`` runs, on a cluster of its own with
  the flock fencer and the demo workload serving HTTP, as
  ``heartbeat-local-cluster --scenario failover`` runs it): kill -9 of every
  process of the serving host -> the workload answers HTTP from another
  host, p50/p99; the killed host is started again before the next run.
  Target per run: service_down_time + 2 loops + the workload start measured
  in that run (idle -> acquiring -> first tick).

Every ratio compares a figure with its target from the same run (the loop
interval and the measured workload start).  The tick log is also checked
for overlaps: ``never_two`` must be true.

    python benchmarks/failover_bench.py [--loop 0.5] [--migrations 3] \
        [--deaths 1] [--hosts 3] [--flock-runs 10] [--sanlock-runs 1]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from heartbeat.cluster.demo import free_port
from heartbeat.cluster.demo import intervals
from heartbeat.cluster.demo import overlaps
from heartbeat.cluster import scenarios
from heartbeat.testing.agent import HaCluster
from heartbeat.testing.broker import short_dir
from heartbeat.testing.broker import wait_for

TICKS = os.sysconf('SC_CLK_TCK')


def tree_cpu(root_pid):
    """CPU seconds of ``root_pid`` and its descendants (from /proc)."""
    children = {}
    cpu = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                fields = f.read().rpartition(')')[2].split()
        except OSError:
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def new_run(ha, known):
    """The first run in the tick log that is not in ``known``."""
    for run in intervals(ha.tick_log):
        if (run.host, run.pid) not in known:
            return run
    return None


def runs_now(ha):
    return {(r.host, r.pid) for r in intervals(ha.tick_log)}


def transitions(host):
    """The host's recent transitions (newest first) as its agent posted."""
    status = host.status()
    agent = {} if status is None else status.own.payload.get('agent', {})
    return agent.get('history', [])


def started_at(host):
    """Wall time of the idle -> acquiring that led to the running workload.

    The workload start (launch, lease, first tick) is measured from it.
    """
    history = transitions(host)
    for i, t in enumerate(history):
        if (t['old'], t['new']) == ('acquiring', 'workload_starting'):
            for earlier in history[i + 1:]:
                if (earlier['old'], earlier['new']) == ('idle', 'acquiring'):
                    return earlier['wall'], history[i + 2:]
    return None, []


def host_of(ha, run):
    return next(h for h in ha.hosts if h.name == run.host)


def maintenance(host, mode):
    subprocess.run([sys.executable, '-m', 'heartbeat.cmd.maintenance',
                    '--config-file', host.broker.config_path, '--mode', mode],
                   check=True, capture_output=True, timeout=30)


def migrate(ha, loop):
    runner = ha.wait_for_runner(timeout=60)
    known = runs_now(ha)
    old = [r for r in intervals(ha.tick_log) if r.host == runner.name][-1]
    asked = time.time()
    maintenance(runner, 'local')
    new = wait_for(lambda: new_run(ha, known), timeout=60, step=0.1)
    old = next(r for r in intervals(ha.tick_log)
               if (r.host, r.pid) == (old.host, old.pid))
    maintenance(runner, 'none')
    attempt, _ = wait_for(lambda: (lambda a: a if a[0] else None)(
        started_at(host_of(ha, new))), timeout=10)
    return {'total_s': round(new.first - asked, 3),
            'stop_s': round(old.last - asked, 3),
            'handover_s': round(new.first - old.last, 3),
            'workload_start_s': round(new.first - attempt, 3),
            'loops': round((new.first - asked) / loop, 2)}


def host_dead_at(survivors, host_id):
    for host in survivors:
        status = host.status()
        if status is None:
            continue
        for h in status.fencing.hosts:
            if h.host_id == host_id and h.state in ('dead', 'free'):
                return time.time()
    return None


def kill_host(ha, loop):
    runner = ha.wait_for_runner(timeout=180)
    survivors = [h for h in ha.hosts if h is not runner]
    known = runs_now(ha)
    killed = time.time()
    runner.kill_all()
    dead = wait_for(lambda: host_dead_at(survivors, runner.host_id),
                    timeout=180, step=0.2)
    new = wait_for(lambda: new_run(ha, known), timeout=120, step=0.1)
    attempt, before = wait_for(lambda: (lambda a: a if a[0] else None)(
        started_at(host_of(ha, new))), timeout=10)
    # The lease became free after the last attempt that found it busy:
    # from there to the first tick is ours (decision + start), at most.
    busy = [t['wall'] for t in before
            if (t['old'], t['new']) == ('acquiring', 'idle')]
    free_after = max(busy) if busy else dead
    return runner, {'total_s': round(new.first - killed, 3),
                    'sanlock_host_dead_s': round(free_after - killed, 3),
                    'survivor_saw_dead_s': round(dead - killed, 3),
                    'ours_s': round(new.first - free_after, 3),
                    'workload_start_s': round(new.first - attempt, 3),
                    'ours_loops': round((new.first - free_after) / loop, 2)}


def loop_cpu(ha, loop, seconds):
    before = {h.name: tree_cpu(h.agent.proc.pid) for h in ha.hosts}
    time.sleep(seconds)
    out = {}
    for h in ha.hosts:
        used = tree_cpu(h.agent.proc.pid) - before[h.name]
        state = h.agent_state() or 'unknown'
        out.setdefault(state, []).append(
            round(1000 * used / (seconds / loop), 3))
    return out


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def flock_failovers(hosts, loop, down_time, count):
    """``count`` failovers with the flock fencer; the row's figures."""
    port = free_port()
    ha = HaCluster(short_dir('hbff'), hosts=hosts, fencing='flock',
                   port=port,
                   broker_overrides={'heartbeat': {
                       'service_down_time': down_time}},
                   agent_overrides={'agent': {'loop_interval': loop}})
    runner = scenarios.Runner(ha, port, scenarios.Timeline(), timeout=60,
                              settle=1.0)
    runs = []
    try:
        ha.start()
        for _ in range(count):
            outcome = runner.run(scenarios.FAILOVER)
            if outcome.error:
                raise RuntimeError(outcome.error)
            new = runner.host(outcome.new_host)
            first = max(r.first for r in intervals(ha.tick_log)
                        if r.host == new.name)
            attempt, _ = wait_for(
                lambda host=new: (lambda a: a if a[0] else None)(
                    started_at(host)), timeout=10)
            start = first - attempt
            target = down_time + 2 * loop + start
            runs.append({'serving_again_s': outcome.serving_again_s,
                         'workload_start_s': round(start, 3),
                         'target_s': round(target, 3),
                         'ratio_to_target': round(
                             outcome.serving_again_s / target, 2)})
            killed = runner.host(outcome.fault_host)
            killed.broker.start()
            killed.agent.start()
        never_two = not overlaps(intervals(ha.tick_log))
    finally:
        ha.stop()
    served = [r['serving_again_s'] for r in runs]
    return {'runs': runs, 'service_down_time_s': down_time,
            'p50_s': round(statistics.median(served), 3),
            'p99_s': round(percentile(served, 0.99), 3),
            'max_ratio_to_target': max(r['ratio_to_target'] for r in runs),
            'never_two': never_two}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--hosts', type=int, default=3)
    parser.add_argument('--loop', type=float, default=0.5,
                        help='[agent] loop_interval (default 0.5 s).')
    parser.add_argument('--migrations', type=int, default=3)
    parser.add_argument('--deaths', type=int, default=1)
    parser.add_argument('--cpu-seconds', type=float, default=10.0)
    parser.add_argument('--flock-runs', type=int, default=10,
                        help='Failovers with the flock fencer (0: none).')
    parser.add_argument('--flock-down-time', type=float, default=1.0,
                        help='service_down_time of the flock row.')
    parser.add_argument('--sanlock-runs', type=int, default=1,
                        help='0: skip the sanlock rows.')
    args = parser.parse_args()
    result = {}
    if args.flock_runs:
        result['flock_failover'] = flock_failovers(
            args.hosts, args.loop, args.flock_down_time, args.flock_runs)
    if not args.sanlock_runs:
        print(json.dumps(result, indent=2))
        return 0 if result.get('flock_failover', {}).get(
            'never_two', True) else 1
    ha = HaCluster(short_dir('hbfb'), hosts=args.hosts,
                   agent_overrides={'agent': {'loop_interval': args.loop}})
    result.update({'hosts': args.hosts, 'loop_interval_s': args.loop,
                   'sanlock_io_timeout_s': 1})
    try:
        ha.start()
        launched = time.time()
        first = wait_for(lambda: new_run(ha, set()), timeout=60, step=0.1)
        result['cold_start_s'] = round(first.first - launched, 3)
        result['agent_loop_cpu_ms'] = loop_cpu(ha, args.loop,
                                               args.cpu_seconds)
        moves = [migrate(ha, args.loop) for _ in range(args.migrations)]
        start = statistics.median(m['workload_start_s'] for m in moves)
        result['migration'] = {
            'runs': moves,
            'median_total_s': statistics.median(m['total_s'] for m in moves),
            'target_s': round(3 * args.loop + statistics.median(
                m['stop_s'] for m in moves) + start, 3)}
        result['migration']['ratio_to_target'] = round(
            result['migration']['median_total_s']
            / result['migration']['target_s'], 2)
        deaths = []
        for _ in range(args.deaths):
            victim, figures = kill_host(ha, args.loop)
            deaths.append(figures)
            ha.hosts.remove(victim)
        target = 2 * args.loop + start
        result['host_death'] = {
            'runs': deaths, 'ours_target_s': round(target, 3),
            'ours_ratio_to_target': round(max(
                d['ours_s'] for d in deaths) / target, 2)}
        runs = intervals(ha.tick_log)
        result['never_two'] = not overlaps(runs)
        result['workload_runs'] = len(runs)
    finally:
        ha.stop()
    print(json.dumps(result, indent=2))
    flock_ok = result.get('flock_failover', {}).get('never_two', True)
    return 0 if result.get('never_two') and flock_ok else 1


if __name__ == '__main__':
    sys.exit(main())
