"""Failover and migration times of the real agents, in the simulator.

Runs :mod:`heartbeat.testing.simulator` (3 real agents, default options,
sanlock io_timeout 1) over many seeds, each seed drawing other clock
origins, boot times, loop jitter and message delays:

* ``host_death``: the runner loses power at 200 s.  ``total_s`` is the
  loss -> a healthy workload elsewhere; ``sanlock_s`` the part sanlock
  needs to free the lease (host_dead after the dead host's last renewal);
  ``ours_s`` the rest: our decision and the workload's start (target:
  <= 2 loops + workload start).
* ``storage_loss``: the same when the runner loses its storage instead.
* ``local_maintenance``: planned migration, maintenance set -> healthy
  elsewhere (target: <= 3 loops + a peer read + stop + start).
* ``speed``: simulated seconds and agent steps per CPU second.

Prints JSON.
"""

import argparse
import json
import statistics
import time

from heartbeat.testing import simulator as sim

LOST_AT = 200.0


def spread(values):
    values = sorted(values)
    if not values:
        return {}
    return {
        'p50': round(statistics.median(values), 2),
        'p95': round(values[int(0.95 * (len(values) - 1))], 2),
        'max': round(values[-1], 2),
        'min': round(values[0], 2),
    }


def loss(fault, seeds, settings):
    total, ours, sanlock, bad = [], [], [], 0
    for seed in seeds:
        cluster = sim.Cluster(settings, 3, seed, faults=[fault],
                              keep_events=False)
        result = cluster.run(600.0)
        bad += len(result.violations)
        [failover] = result.failovers
        if failover.recovered_at is None:
            bad += 1
            continue
        member = cluster.authority.member(failover.host)
        free = member.last_renewal + settings.sanlock.host_dead
        total.append(failover.took)
        sanlock.append(free - failover.lost_at)
        ours.append(failover.recovered_at - free)
    return {'total_s': spread(total), 'sanlock_s': spread(sanlock),
            'ours_s': spread(ours), 'violations_or_no_failover': bad}


def migration(seeds, settings):
    took, bad = [], 0
    for seed in seeds:
        result = sim.simulate(settings, 3, [sim.LocalMaintenance(
            LOST_AT, None, 300.0)], 600.0, seed, keep_events=False)
        bad += len(result.violations)
        later = [w for w in result.workloads if w.launched > LOST_AT]
        if not later or later[0].healthy_at is None:
            bad += 1
            continue
        took.append(later[0].healthy_at - LOST_AT)
    return {'total_s': spread(took), 'violations_or_no_move': bad}


def speed(settings, duration=3600.0):
    start = time.process_time()
    steps = 0
    for seed in range(5):
        faults = sim.random_schedule(seed, 3, duration, 10)
        result = sim.simulate(settings, 3, faults, duration, seed,
                              keep_events=False)
        steps += result.steps
    spent = time.process_time() - start
    return {'simulated_s_per_cpu_s': round(5 * duration / spent),
            'events_per_cpu_s': round(steps / spent)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=200,
                        help='Seeds per scenario (default 200).')
    args = parser.parse_args()
    settings = sim.SimSettings()
    seeds = range(args.seeds)
    agent = settings.agent
    out = {
        'settings': {
            'loop_interval': agent.loop_interval,
            'service_down_time': agent.service_down_time,
            'io_timeout': settings.sanlock.io_timeout,
            'host_dead_s': settings.sanlock.host_dead,
            'workload_start_s': settings.workload_start,
            'workload_stop_s': settings.workload_stop,
            'message_delay_s': settings.message_delay,
            'failover_bound_s': round(settings.failover_bound(), 2),
        },
        'targets': {
            'ours_s': 2 * agent.loop_interval + settings.workload_start,
            'local_maintenance_s': (3 * agent.loop_interval
                                    + settings.refresh_interval
                                    + settings.workload_stop
                                    + settings.workload_start),
        },
        'host_death': loss(sim.HostDeath(LOST_AT), seeds, settings),
        'storage_loss': loss(sim.StorageLoss(LOST_AT, None, None), seeds,
                             settings),
        'local_maintenance': migration(seeds, settings),
        'speed': speed(settings),
    }
    print(json.dumps(out, indent=2))


if __name__ == '__main__':
    main()
