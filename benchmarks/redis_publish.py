"""Publish throughput of one process: a heartbeat redis beat vs raw SET.

Both use the same redis-py client and the same encoded payload; rounds
alternate between the two so that drift of the machine hits both alike.
"""

from __future__ import annotations

import time
from typing import Any
import uuid

from oslo_config import cfg

from heartbeat import conf as hb_conf
from heartbeat.drivers.redis import codec
from heartbeat.drivers.redis import RedisDriver
from heartbeat.model import Report

ROUND = 0.5


def _conf(url: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf([], project='heartbeat')
    conf.set_override('url', url, 'heartbeat_redis')
    conf.set_override('prefix', 'pub%s' % uuid.uuid4().hex[:6],
                      'heartbeat_redis')
    return conf


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def _rate(fn: Any) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + ROUND
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def run(url: str, rounds: int = 10) -> dict[str, Any]:
    driver = RedisDriver(_conf(url))
    driver.start()
    try:
        driver.join('bench', 'member-1')
        seq = [0]
        payload = {'host': 'compute-1', 'vms': 12}

        def beat() -> None:
            seq[0] += 1
            driver.publish(Report('member-1', 'bench', seq[0], 42,
                                  state='enabled', score=3400,
                                  payload=payload, written_at=time.time()))

        def raw_set() -> None:
            seq[0] += 1
            data = codec.encode(Report('member-1', 'bench', seq[0], 42,
                                       state='enabled', score=3400,
                                       payload=payload,
                                       written_at=time.time()))
            driver.client.set('rawbench:member-1', data)

        ours, raw, ratios = [], [], []
        for i in range(rounds):
            # Alternate which goes first, and compare neighbours only.
            if i % 2:
                ours.append(_rate(beat))
                raw.append(_rate(raw_set))
            else:
                raw.append(_rate(raw_set))
                ours.append(_rate(beat))
            ratios.append(ours[-1] / raw[-1])
        driver.client.delete('rawbench:member-1')
        return {'heartbeat_beats_per_s': _median(ours),
                'raw_set_per_s': _median(raw),
                'ratio': _median(ratios),
                'ratio_min': min(ratios), 'ratio_max': max(ratios),
                'rounds': rounds, 'round_s': ROUND}
    finally:
        driver.stop()
