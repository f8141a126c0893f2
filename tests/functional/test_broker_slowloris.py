"""200 slowloris connections against a real broker: callers still served."""

import os
import time

import pytest

from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.slowloris import SlowClients

pytestmark = [pytest.mark.broker]

SLOW = 200
#: Seconds between two bytes of a slow client (and between its reconnects).
INTERVAL = 0.1
CALLS = 300
TARGET_P99 = 0.050


def p99(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def timed_pings(broker, fresh):
    """Round trips of ping, each on a new connection if ``fresh``."""
    samples = []
    kept = broker.client(timeout=2.0)
    try:
        for _ in range(CALLS):
            client = broker.client(timeout=2.0) if fresh else kept
            start = time.perf_counter()
            assert client.ping()['pong']
            samples.append(time.perf_counter() - start)
            if fresh:
                client.close()
            time.sleep(0.002)
    finally:
        kept.close()
    return samples


@pytest.fixture
def broker():
    workdir = short_dir()
    proc = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    init_area(proc.config_path)
    proc.start()
    yield proc
    proc.stop()


def test_pings_are_served_while_200_slow_clients_hold_connections(broker):
    with SlowClients(broker.socket_path, count=SLOW,
                     interval=INTERVAL) as slow:
        # Let the slow clients reach the limit and the timeouts start.
        time.sleep(3.0)
        fresh = timed_pings(broker, fresh=True)
        kept = timed_pings(broker, fresh=False)
    # The broker closed slow clients (by eviction or read timeout) and
    # they came back: the pressure lasted the whole measurement.
    assert slow.reconnects > SLOW
    assert p99(fresh) < TARGET_P99, sorted(fresh)[-10:]
    assert p99(kept) < TARGET_P99, sorted(kept)[-10:]
    assert broker.proc.poll() is None
