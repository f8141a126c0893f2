"""RPC round-trip latency of a real heartbeat-broker, printed as JSON.

Starts a broker (fencer none) whose metadata lives on a FUSE passthrough,
then measures ping and get_status round trips: idle, during a storage stall
of --stall seconds (every storage operation blocks), and with --clients
concurrent clients, and while --slow slowloris clients hold connections
(half idle, half sending one byte per --slow-interval, reconnecting when
closed), on a kept connection and on a new connection per call.  Ratios are
against the idle run of the same process.  Targets: p99 below 5 ms idle and
during the stall; below 50 ms with the slow clients.

    python benchmarks/rpc_bench.py [--stall 30] [--clients 20] [--calls 2000]
        [--slow 200] [--slow-interval 0.1]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from heartbeat.broker.client import BrokerClient
from heartbeat.broker import errors
from heartbeat.cluster.fuse import PausableMount
from heartbeat.cmd import make_conf
from heartbeat.drivers.storage import admin
from heartbeat.testing.slowloris import SlowClients

CONF = """\
[heartbeat]
host_id = 1
report_interval = 0.2
service_down_time = 1.0
[heartbeat_storage]
path = {metadata}
max_hosts = 16
claim_timeout = 0
[broker]
socket_path = {socket}
storage_stall_after = 1.0
domain_monitor_interval = 0.2
domain_probe_timeout = 1.0
[fencing]
fencer = none
[submonitors]
interval = 0.5
"""


def percentiles(samples):
    ordered = sorted(samples)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
    return {'n': len(ordered),
            'p50_ms': round(pct(50) * 1e3, 3),
            'p99_ms': round(pct(99) * 1e3, 3),
            'max_ms': round(ordered[-1] * 1e3, 3),
            'mean_ms': round(statistics.fmean(ordered) * 1e3, 3)}


def timed_calls(client, method, count=None, duration=None):
    samples = []
    deadline = time.monotonic() + duration if duration else None
    while True:
        if count is not None and len(samples) >= count:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        start = time.perf_counter()
        client.call(method)
        samples.append(time.perf_counter() - start)
    return samples


def concurrent(socket_path, clients, calls):
    samples = []
    lock = threading.Lock()

    def worker():
        with BrokerClient(socket_path, timeout=5.0) as client:
            got = timed_calls(client, 'ping', count=calls)
        with lock:
            samples.extend(got)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    out = percentiles(samples)
    out['clients'] = clients
    out['calls_per_s'] = round(len(samples) / elapsed, 1)
    return out


def fresh_calls(socket_path, method, count):
    """Round trips of ``method``, each on a new connection."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        with BrokerClient(socket_path, timeout=5.0) as client:
            client.call(method)
        samples.append(time.perf_counter() - start)
    return samples


def slowloris(socket_path, client, slow, interval, calls):
    """Ping latency with and without ``slow`` slow clients, same run."""
    idle = {'kept': percentiles(timed_calls(client, 'ping', count=calls)),
            'fresh': percentiles(fresh_calls(socket_path, 'ping', calls))}
    with SlowClients(socket_path, count=slow, interval=interval) as clients:
        time.sleep(3.0)  # until the slow clients fill the server
        before = clients.reconnects
        start = time.monotonic()
        loaded = {'kept': percentiles(timed_calls(client, 'ping',
                                                  count=calls)),
                  'fresh': percentiles(fresh_calls(socket_path, 'ping',
                                                   calls))}
        closed_per_s = (clients.reconnects - before) / (
            time.monotonic() - start)
    row = {'slow_clients': slow, 'interval_s': interval,
           'slow_closed_per_s': round(closed_per_s, 1),
           'idle': idle, 'slow': loaded, 'target_p99_ms': 50.0}
    for kind in ('kept', 'fresh'):
        for stat in ('p50_ms', 'p99_ms'):
            row['ratio_%s_%s' % (kind, stat[:3])] = round(
                loaded[kind][stat] / max(idle[kind][stat], 1e-3), 2)
    row['target_met'] = all(loaded[kind]['p99_ms'] < 50.0
                            for kind in ('kept', 'fresh'))
    return row


def start_broker(workdir, config, log):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'heartbeat.cmd.broker', '--config-file',
         config], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    client = BrokerClient(os.path.join(workdir, 'b.sock'), timeout=1.0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc, client
        except errors.BrokerError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit('broker did not start; see %s' % log.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stall', type=float, default=30.0)
    parser.add_argument('--clients', type=int, default=20)
    parser.add_argument('--calls', type=int, default=2000)
    parser.add_argument('--slow', type=int, default=200)
    parser.add_argument('--slow-interval', type=float, default=0.1)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='hbbench')
    with PausableMount(os.path.join(workdir, 'fuse')) as mount:
        config = os.path.join(workdir, 'broker.conf')
        with open(config, 'w', encoding='utf-8') as f:
            f.write(CONF.format(
                metadata=os.path.join(mount.mountpoint, 'metadata'),
                socket=os.path.join(workdir, 'b.sock')))
        admin.init_area(make_conf(['--config-file', config], [], '',
                                  quiet=True), force=True)
        with open(os.path.join(workdir, 'broker.log'), 'ab') as log:
            proc, client = start_broker(workdir, config, log)
        try:
            client.call('start_domain_monitor')
            result = {'benchmark': 'rpc_round_trip', 'unit': 'ms'}
            timed_calls(client, 'ping', count=200)  # warm up
            result['idle'] = {
                'ping': percentiles(timed_calls(client, 'ping',
                                                count=args.calls)),
                'get_status': percentiles(timed_calls(client, 'get_status',
                                                      count=args.calls))}
            mount.pause()
            try:
                half = args.stall / 2
                stall = {
                    'seconds': args.stall,
                    'ping': percentiles(timed_calls(client, 'ping',
                                                    duration=half)),
                    'get_status': percentiles(timed_calls(
                        client, 'get_status', duration=half))}
                status = client.call('get_status')
                stall['writer_stalled'] = status['writer']['stalled']
                stall['domain_valid'] = status['domain']['valid']
            finally:
                mount.resume()
            result['storage_stall'] = stall
            result['concurrent'] = concurrent(
                os.path.join(workdir, 'b.sock'), args.clients,
                max(1, args.calls // args.clients))
            result['slowloris'] = slowloris(
                os.path.join(workdir, 'b.sock'), client, args.slow,
                args.slow_interval, min(args.calls, 500))
            idle = result['idle']['ping']['p99_ms']
            result['ratios_vs_idle_p99'] = {
                'stall_ping': round(stall['ping']['p99_ms'] / idle, 2),
                'stall_get_status': round(
                    stall['get_status']['p99_ms']
                    / result['idle']['get_status']['p99_ms'], 2),
                'concurrent_ping': round(
                    result['concurrent']['p99_ms'] / idle, 2)}
            result['target_p99_ms'] = 5.0
            result['target_met'] = (
                result['idle']['ping']['p99_ms'] < 5.0
                and result['idle']['get_status']['p99_ms'] < 5.0
                and stall['ping']['p99_ms'] < 5.0
                and stall['get_status']['p99_ms'] < 5.0
                and result['slowloris']['target_met'])
        finally:
            client.close()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == '__main__':
    main()
