"""``python -m heartbeat.testing.simulator``: run one simulation.

Runs a cluster of real agents under a random fault schedule drawn from
``--seed`` and prints what happened (``--json``: everything, as JSON).
Exits 1 when an invariant broke, so a loop over seeds finds the first bad
one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from heartbeat.agent.settings import AgentSettings
from heartbeat.testing.simulator.cluster import simulate
from heartbeat.testing.simulator.faults import random_schedule
from heartbeat.testing.simulator.lease import SanlockTiming
from heartbeat.testing.simulator.settings import SimSettings
from heartbeat.testing.simulator.settings import SimulationError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='python -m heartbeat.testing.simulator',
        description='Simulate an HA cluster of heartbeat agents under '
                    'random faults and check its invariants.')
    p.add_argument('--hosts', type=int, default=3,
                   help='Number of hosts (default 3).')
    p.add_argument('--duration', type=float, default=600.0,
                   help='Simulated seconds (default 600).')
    p.add_argument('--seed', type=int, default=1,
                   help='Seed of the fault schedule and of every random '
                        'choice (default 1).')
    p.add_argument('--faults', type=int, default=4,
                   help='Number of random faults (default 4; 0: none).')
    p.add_argument('--loop-interval', type=float, default=10.0,
                   help='[agent] loop_interval (default 10).')
    p.add_argument('--service-down-time', type=float, default=60.0,
                   help='[heartbeat] service_down_time (default 60).')
    p.add_argument('--io-timeout', type=float, default=1.0,
                   help='sanlock io_timeout (default 1: host dead after '
                        '68 s).')
    p.add_argument('--message-delay', type=float, default=1.0,
                   help='Largest delay of a post, in seconds (default 1).')
    p.add_argument('--events', action='store_true',
                   help='Also print every event.')
    p.add_argument('--json', action='store_true',
                   help='Print the whole result as JSON.')
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    agent = dataclasses.replace(
        AgentSettings(), loop_interval=args.loop_interval,
        service_down_time=args.service_down_time)
    settings = SimSettings(
        agent=agent, sanlock=SanlockTiming(io_timeout=args.io_timeout),
        message_delay=args.message_delay)
    faults = random_schedule(args.seed, args.hosts, args.duration,
                             args.faults)
    try:
        result = simulate(settings, args.hosts, faults, args.duration,
                          args.seed)
    except SimulationError as err:
        print('Cannot simulate: %s' % err, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        print(result.summary())
        if args.events:
            for e in result.events:
                print('%9.1f %-7s %-9s %s' % (
                    e.t, '' if e.host is None else 'host-%d' % e.host,
                    e.kind, e.detail))
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(main())
