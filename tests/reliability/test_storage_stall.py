"""A 30 s stall of the shared storage (FUSE) under a real broker.

The broker answers from memory while its writer thread is stuck in I/O.
Targets: broker RPC p99 < 50 ms through the stall (every call within the
client's 1 s timeout); after the storage comes back the writer publishes
the newest state within 1 s and the broker is healthy again (writer not
stalled, storage domain valid) within 2 s.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import time
from typing import Any

import pytest

from heartbeat.cluster.fuse import PausableMount
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.broker import wait_for
from heartbeat.testing import faultsuite

pytestmark = [pytest.mark.broker, pytest.mark.fuse]

STALL = 30.0
TARGET_P99 = 0.050
CAUGHT_UP = 1.0
HEALTHY = 2.0


@pytest.fixture
def mount() -> Iterator[PausableMount]:
    with PausableMount(short_dir('hbfs')) as m:
        yield m


def _timed(samples: list[float], call: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = call(*args)
    samples.append(time.perf_counter() - start)
    return result


def _healthy(client: Any) -> bool:
    status = client.get_status()
    return not status.writer.stalled and status.domain.valid


def test_storage_stall(fault: Any, scale: int,
                       mount: PausableMount) -> None:
    stall = STALL * scale
    broker = BrokerProcess(short_dir(), 1,
                           os.path.join(mount.mountpoint, 'metadata'))
    init_area(broker.config_path)
    broker.start()
    samples: list[float] = []
    try:
        with broker.client(timeout=1.0) as client:
            client.start_domain_monitor()
            client.put_state('before', 1)
            wait_for(lambda: client.get_status().writer.written_version == 1)
            wait_for(lambda: _healthy(client))
            mount.pause()
            start = time.monotonic()
            version = stalled = 0
            while time.monotonic() - start < stall:
                _timed(samples, client.ping)
                version = _timed(samples, client.put_state,
                                 'during-%d' % version, 1)['version']
                status = _timed(samples, client.get_status)
                stalled += status.writer.stalled
                time.sleep(0.05)
            mount.resume()
            resumed = time.monotonic()
            wait_for(lambda: client.get_status().writer.written_version
                     >= version, timeout=30, step=0.01)
            caught_up = time.monotonic() - resumed
            wait_for(lambda: _healthy(client), timeout=30, step=0.01)
            healthy = time.monotonic() - resumed
    finally:
        mount.resume()
        broker.stop()
    p99 = faultsuite.percentile(samples, 0.99)
    fault.row('storage: %.0fs FUSE stall under the broker' % stall,
              'metadata on a FUSE mount stalled; ping, put_state and '
              'get_status every 50 ms',
              {'calls': len(samples), 'p99_ms': round(p99 * 1000, 2),
               'max_ms': round(max(samples) * 1000, 1),
               'writer_seen_stalled': stalled,
               'caught_up_s': round(caught_up, 2),
               'healthy_s': round(healthy, 2)},
              'RPC p99 < %.0f ms; writer caught up <= %.0fs, healthy '
              '<= %.0fs after' % (TARGET_P99 * 1000, CAUGHT_UP, HEALTHY),
              p99 < TARGET_P99 and max(samples) < 1.0 and stalled > 0
              and caught_up <= CAUGHT_UP and healthy <= HEALTHY)
