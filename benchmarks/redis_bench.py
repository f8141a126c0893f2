"""heartbeat's redis driver, side by side with its baselines, in one run.

Starts its own redis-server (system package) in a temporary directory and
prints one JSON document::

    python benchmarks/redis_bench.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

# Run as a script, this directory is on sys.path.
import redis_publish
import redis_push
import redis_scale

from heartbeat.testing import servers

TARGETS = {
    'scale_100000_core_fraction_max': 0.5,
    'scale_members_per_cpu_second_ratio_min': 20.0,
    'publish_ratio_min': 0.8,
    'push_p99_ms_max': 100.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', default='1000,10000,100000')
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(','))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, \
            servers.RedisServer(tmp) as server:
        result = {
            'publish': redis_publish.run(server.url),
            'push_latency': redis_push.run(server.url),
            'scale': redis_scale.run(server.url, sizes),
        }
    result['targets'] = TARGETS
    result['elapsed_s'] = time.monotonic() - started
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
