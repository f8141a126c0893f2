"""A real heartbeat-broker under hostile callers and a second instance.

Targets: 10,000 fuzzed RPC frames -> the broker keeps running (same
worker), every complete frame answered or its connection closed, ping
still answers; 200 slowloris connections -> legitimate ping p99 < 50 ms
(issue 10); a second broker on a live socket -> exits 2 within 10 s with
one line, no respawn loop, no ghost member in the storage (issue 10).
"""

from __future__ import annotations

from collections.abc import Iterator
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.broker import wait_for
from heartbeat.testing import faultsuite
from heartbeat.testing.rpcfuzz import fuzz
from heartbeat.testing.slowloris import SlowClients
from tests.functional.test_broker_second_instance import members
from tests.functional.test_broker_slowloris import timed_pings

pytestmark = pytest.mark.broker

FRAMES = 10000
SLOW = 200
TARGET_P99 = 0.050


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    """A broker of its own for each case.

    What one case's callers leave behind must not load the next case.
    """
    workdir = short_dir('hbrf')
    proc = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    init_area(proc.config_path)
    proc.start()
    yield proc
    proc.stop()


def test_fuzzed_frames(fault: Any, scale: int, broker: BrokerProcess) -> None:
    before = broker.status().host
    started = time.monotonic()
    result = fuzz(broker.socket_path, FRAMES * scale, seed=10)
    took = time.monotonic() - started
    after = broker.status().host
    alive = broker.proc is not None and broker.proc.poll() is None
    log = broker.log_tail(200000)
    fault.row('broker: %d fuzzed RPC frames' % result.frames,
              '%d kinds of damage (%s), seed 10, in %.0fs'
              % (len(result.kinds), ', '.join(sorted(result.kinds)), took),
              {'error_replies': result.error_replies,
               'ok_replies': result.ok_replies, 'closed': result.closed,
               'abandoned': result.abandoned,
               'unanswered': result.unanswered,
               'slowest_s': round(result.slowest_s, 3),
               'same_worker': after.pid == before.pid,
               'tracebacks': log.count('Traceback')},
              'alive, same worker, 0 unanswered, 0 tracebacks, ping ok',
              alive and after.pid == before.pid and result.unanswered == 0
              and 'Traceback' not in log)


def test_slowloris(fault: Any, broker: BrokerProcess) -> None:
    with SlowClients(broker.socket_path, count=SLOW, interval=0.1) as slow:
        # Let the slow clients reach the limit and the timeouts start.
        time.sleep(3.0)
        fresh = timed_pings(broker, fresh=True)
        kept = timed_pings(broker, fresh=False)
    p99_fresh = faultsuite.percentile(fresh, 0.99)
    p99_kept = faultsuite.percentile(kept, 0.99)
    fault.row('broker: %d slowloris connections' % SLOW,
              'half idle, half 1 byte/0.1s; %d pings on new and %d on a '
              'kept connection' % (len(fresh), len(kept)),
              {'p99_new_ms': round(p99_fresh * 1000, 2),
               'p99_kept_ms': round(p99_kept * 1000, 2),
               'slow_reconnects': slow.reconnects},
              'ping p99 < %.0f ms' % (TARGET_P99 * 1000),
              p99_fresh < TARGET_P99 and p99_kept < TARGET_P99
              and slow.reconnects > SLOW)


def test_second_broker_on_a_live_socket(fault: Any,
                                        broker: BrokerProcess) -> None:
    wait_for(lambda: members(broker.config_path) == {1})
    second = BrokerProcess(broker.workdir, 2,
                           broker.sections['heartbeat_storage']['path'],
                           overrides={'broker': {
                               'socket_path': broker.socket_path}})
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.broker', '--config-file',
         second.config_path], capture_output=True, text=True, timeout=60,
        check=False)
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    time.sleep(1.0)
    ghost = members(broker.config_path) - {1}
    respawn = 'Forking too fast' in out
    fault.row('broker: second instance on a live socket',
              'heartbeat-broker host_id 2 with the running one\'s socket',
              {'rc': proc.returncode, 'seconds': round(took, 2),
               'lines': len(lines), 'respawn_loop': respawn,
               'ghost_slots': len(ghost), 'traceback': 'Traceback' in out,
               'first_still_healthy': broker.status().writer.healthy},
              'rc != 0 (2), < 10s, no respawn loop, no ghost member',
              proc.returncode == 2 and took < 10 and not respawn
              and not ghost and 'Traceback' not in out)
