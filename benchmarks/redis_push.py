"""Push latency: a state change published -> the listener's callback."""

from __future__ import annotations

import threading
import time
from typing import Any
import uuid

from oslo_config import cfg

from heartbeat.drivers.redis import RedisDriver
from heartbeat.model import Report
from heartbeat.testing import config


def _conf(url: str, prefix: str) -> cfg.ConfigOpts:
    return config.make_conf(heartbeat_redis={'url': url, 'prefix': prefix})


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


def run(url: str, samples: int = 1000) -> dict[str, Any]:
    prefix = 'push%s' % uuid.uuid4().hex[:6]
    writer = RedisDriver(_conf(url, prefix))
    reader = RedisDriver(_conf(url, prefix))
    writer.start()
    reader.start()
    arrived = threading.Event()
    stamps: list[float] = []

    def on_change(group: str) -> None:
        stamps.append(time.perf_counter())
        arrived.set()

    cancel = reader.listen(on_change)
    try:
        writer.join('bench', 'member-1')
        latencies = []
        for seq in range(1, samples + 1):
            arrived.clear()
            stamps.clear()
            start = time.perf_counter()
            writer.publish(Report('member-1', 'bench', seq, 42,
                                  state='state-%d' % seq))
            if not arrived.wait(5.0):
                raise RuntimeError('state change %d was not pushed' % seq)
            latencies.append((stamps[0] - start) * 1000)
        return {'samples': samples,
                'p50_ms': _percentile(latencies, 50),
                'p99_ms': _percentile(latencies, 99),
                'max_ms': max(latencies)}
    finally:
        cancel()
        writer.stop()
        reader.stop()
