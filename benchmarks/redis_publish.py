"""Publish throughput of one process: a heartbeat redis beat vs raw SET.

Three ways of writing one member's record, all through the SAME redis-py
client (the driver's own, so the same connection pool, timeouts and retry
settings) and the same record bytes (``codec.encode`` of the same report):

* ``beat``: ``RedisDriver.publish`` (owner check, server-clock liveness
  tick and seq, push decision; one round trip).  The state does not
  change, so the record is encoded (to tell that) but not sent: the
  server keeps the record of the last change;
* ``raw``: encode the record and ``SET`` it, what a plain redis-py
  publisher does per beat (the baseline of the target);
* ``raw_prebuilt``: ``SET`` of bytes encoded before the clock starts, the
  bare round-trip floor.

The three are interleaved in slices of ``SLICE`` operations, in a rotating
order, inside every round, so machine drift hits all alike; a round's ratio
compares the rates of that round only.  The result is the median over
rounds with its spread, plus the server's own time per command from INFO
commandstats.  Run alone (starts its own redis-server)::

    python benchmarks/redis_publish.py [--rounds 15]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import gc
import json
import statistics
import sys
import tempfile
import time
from typing import Any
import uuid

from oslo_config import cfg

from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis import RedisDriver
from heartbeat.model import Report
from heartbeat.testing import config
from heartbeat.testing import servers

#: Operations per timed slice, and slices of each kind per round.
SLICE = 200
SLICES = 6
ROUNDS = 15
KINDS = ('beat', 'raw', 'raw_prebuilt')
RAW_KEY = 'rawbench:member-1'


def _conf(url: str) -> cfg.ConfigOpts:
    return config.make_conf(heartbeat_redis={
        'url': url, 'prefix': 'pub%s' % uuid.uuid4().hex[:6]})


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _spread(values: list[float]) -> dict[str, float]:
    return {'median': statistics.median(values),
            'p25': _quantile(values, 0.25), 'p75': _quantile(values, 0.75),
            'min': min(values), 'max': max(values)}


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    for _ in range(SLICE):
        fn()
    return time.perf_counter() - start


def _server_us(client: Any) -> dict[str, tuple[int, int]]:
    stats = client.info('commandstats')
    return {name: (stats.get('cmdstat_' + name, {}).get('calls', 0),
                   stats.get('cmdstat_' + name, {}).get('usec', 0))
            for name in ('evalsha', 'set')}


def _same_record(stored: bytes | None) -> int:
    """Length of the beat's last record, checked equal to a raw encoding."""
    report = codec.decode('bench', 'member-1', stored or b'')
    if not isinstance(report, Report) or codec.encode(report) != stored:
        raise RuntimeError('the beat stored other bytes than the raw '
                           'writers send; the comparison would be unfair')
    return len(stored or b'')


def _writers(driver: RedisDriver) -> dict[str, Callable[[], None]]:
    seq = [0]
    payload = {'host': 'compute-1', 'vms': 12}

    def report() -> Report:
        seq[0] += 1
        return Report('member-1', 'bench', seq[0], 42, state='enabled',
                      score=3400, payload=payload, written_at=time.time())

    prebuilt = codec.encode(report())
    client = driver.client

    def beat() -> None:
        driver.publish(report())

    def raw() -> None:
        client.set(RAW_KEY, codec.encode(report()))

    def raw_prebuilt() -> None:
        client.set(RAW_KEY, prebuilt)

    return {'beat': beat, 'raw': raw, 'raw_prebuilt': raw_prebuilt}


def _round(writers: dict[str, Callable[[], None]],
           index: int) -> dict[str, float]:
    spent = dict.fromkeys(KINDS, 0.0)
    for i in range(SLICES):
        shift = (index + i) % len(KINDS)
        for kind in KINDS[shift:] + KINDS[:shift]:
            spent[kind] += _timed(writers[kind])
    return {kind: SLICE * SLICES / spent[kind] for kind in KINDS}


def run(url: str, rounds: int = ROUNDS) -> dict[str, Any]:
    driver = RedisDriver(_conf(url))
    driver.start()
    gc_was_enabled = gc.isenabled()
    try:
        driver.join('bench', 'member-1')
        writers = _writers(driver)
        _round(writers, 0)  # warm-up: connections, scripts, caches
        before = _server_us(driver.client)
        rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
        ratio, ratio_prebuilt = [], []
        gc.collect()
        gc.disable()
        for index in range(rounds):
            got = _round(writers, index)
            for kind in KINDS:
                rates[kind].append(got[kind])
            ratio.append(got['beat'] / got['raw'])
            ratio_prebuilt.append(got['beat'] / got['raw_prebuilt'])
        after = _server_us(driver.client)
        stored = driver.client.hget(codec.Keys(driver.prefix,
                                               'bench').reports, 'member-1')
        driver.client.delete(RAW_KEY)
    finally:
        if gc_was_enabled:
            gc.enable()
        driver.stop()
    server = {name: (after[name][1] - before[name][1])
              / max(1, after[name][0] - before[name][0]) for name in after}
    return {
        'heartbeat_beats_per_s': statistics.median(rates['beat']),
        'raw_set_per_s': statistics.median(rates['raw']),
        'raw_prebuilt_set_per_s': statistics.median(rates['raw_prebuilt']),
        'ratio': statistics.median(ratio),
        'ratio_min': min(ratio), 'ratio_max': max(ratio),
        'ratio_spread': _spread(ratio),
        'ratio_vs_prebuilt': _spread(ratio_prebuilt),
        'server_us_per_beat': server['evalsha'],
        'server_us_per_set': server['set'],
        'record_bytes': _same_record(stored),
        'rounds': rounds, 'ops_per_round_each': SLICE * SLICES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--rounds', type=int, default=ROUNDS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            servers.RedisServer(tmp) as server:
        result = run(server.url, args.rounds)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
