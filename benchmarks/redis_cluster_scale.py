"""Beats carried by a Redis Cluster of 3 masters vs one redis server.

The same members (``--groups`` groups of ``--members`` each) beat as fast
as ``--publishers`` processes can send them, through the driver's real
publish path (``publish_many``: one server-side script call per beat,
pipelined), first on one redis-server, then on a real 3-master cluster
(:class:`heartbeat.testing.servers.RedisCluster`).  Each side runs for
``--seconds``.

What a shard can carry is bounded by its one core (redis runs commands on
one thread), so the figure is measured on the servers: each server's CPU
time (INFO cpu) per beat it executed.  A side's capacity is the beat rate
at which its busiest server reaches one core: ``beats / max(server CPU
seconds)`` per second of CPU.  With groups spread evenly, 3 shards carry
about 3x the beats of one.  The rate reached on this machine
(``achieved_beats_per_s``) is printed as well: when the publishers and the
servers share fewer cores than they need, it is bounded by the machine,
not by redis.

Prints one JSON object::

    python benchmarks/redis_cluster_scale.py [--groups 30] [--members 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
from heartbeat.testing.redis_servers import CLUSTER_SLOTS
from heartbeat.testing import servers

BATCH = 1000


def _conf(url: str, nodes: list[str], prefix: str) -> cfg.ConfigOpts:
    return config.make_conf(
        heartbeat={'driver': 'redis', 'report_interval': 10.0,
                   'service_down_time': 30.0},
        heartbeat_redis={'url': url, 'cluster_nodes': nodes,
                         'prefix': prefix, 'socket_timeout': 30.0})


def _publisher(url: str, nodes: list[str], prefix: str,
               members: list[tuple[str, str]], start: float, stop: float,
               ready: Any, out: Any) -> None:
    driver = RedisDriver(_conf(url, nodes, prefix))
    driver.start()
    by_group: dict[str, list[str]] = {}
    for group, member in members:
        by_group.setdefault(group, []).append(member)
    for group, ids in by_group.items():
        driver.join_many(group, ids)
    ready.put(True)
    seq = 0
    beats = 0
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < stop:
        seq += 1
        for first in range(0, len(members), BATCH):
            driver.publish_many([
                Report(member_id=m, group=g, seq=seq, incarnation=1,
                       state='up')
                for g, m in members[first:first + BATCH]])
            beats += len(members[first:first + BATCH])
            if time.time() >= stop:
                break
    driver.stop()
    out.put(beats)


def _cpu(node: servers.RedisServer) -> float:
    info = node.execute('INFO', 'cpu')
    fields = dict(line.split(':', 1) for line in info.splitlines()
                  if ':' in line)
    return float(fields['used_cpu_user']) + float(fields['used_cpu_sys'])


def _commands(node: servers.RedisServer) -> int:
    info = node.execute('INFO', 'stats')
    for line in info.splitlines():
        if line.startswith('total_commands_processed:'):
            return int(line.split(':', 1)[1])
    return 0


def side(nodes: list[servers.RedisServer], url: str, hosts: list[str],
         groups: int, members: int, publishers: int,
         seconds: float) -> dict[str, Any]:
    prefix = 'scale%s' % uuid.uuid4().hex[:6]
    everyone = [('g%03d' % g, 'member-%05d' % m)
                for g in range(groups) for m in range(members)]
    ctx = multiprocessing.get_context('spawn')
    ready, out = ctx.Queue(), ctx.Queue()
    procs = []
    # Members are dealt out in turn, so every publisher beats every group.
    shares = [everyone[i::publishers] for i in range(publishers)]
    # Every publisher starts at one wall-clock time, once all have joined.
    start = time.time() + 5.0 + 0.5 * publishers
    stop = start + seconds
    for share in shares:
        proc = ctx.Process(target=_publisher,
                           args=(url, hosts, prefix, share, start, stop,
                                 ready, out))
        proc.start()
        procs.append(proc)
    for _ in procs:
        ready.get(timeout=120)
    if time.time() > start:
        raise SystemExit('publishers were not ready in time; use fewer '
                         'members or more --seconds')
    while time.time() < start:
        time.sleep(0.005)
    cpu0 = [_cpu(n) for n in nodes]
    cmd0 = [_commands(n) for n in nodes]
    wall0 = time.monotonic()
    beats = sum(out.get(timeout=seconds + 120) for _ in procs)
    wall = time.monotonic() - wall0
    cpu = [_cpu(n) - c for n, c in zip(nodes, cpu0, strict=True)]
    cmds = [_commands(n) - c for n, c in zip(nodes, cmd0, strict=True)]
    for proc in procs:
        proc.join()
    busiest = max(cpu)
    shares_of_beats = [round(c / max(sum(cmds), 1), 3) for c in cmds]
    spread = {}
    if len(nodes) > 1:
        owner = {}
        for g in range(groups):
            key = codec.Keys(prefix, 'g%03d' % g).meta
            owner[g] = int(nodes[0].execute('CLUSTER', 'KEYSLOT', key))
        spread = {'groups_per_shard': _groups_per_shard(nodes, owner)}
    return {
        'servers': len(nodes),
        'beats': beats,
        'achieved_beats_per_s': round(beats / wall),
        'server_cpu_s': [round(c, 2) for c in cpu],
        'server_cpu_us_per_beat': round(1e6 * sum(cpu) / beats, 2),
        'command_share_per_server': shares_of_beats,
        'capacity_beats_per_cpu_s': round(beats / busiest),
        **spread,
    }


def _groups_per_shard(nodes: list[servers.RedisServer],
                      slots: dict[int, int]) -> list[int]:
    share = CLUSTER_SLOTS // len(nodes)
    counts = [0] * len(nodes)
    for slot in slots.values():
        counts[min(slot // share, len(nodes) - 1)] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--groups', type=int, default=30,
                        help='groups, spread over the shards by hash slot')
    parser.add_argument('--members', type=int, default=500,
                        help='members per group')
    parser.add_argument('--publishers', type=int, default=2,
                        help='publisher processes, each beating a share '
                             'of every group')
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='seconds each side beats for')
    args = parser.parse_args(argv)
    if min(args.groups, args.members, args.publishers) < 1 or (
            args.seconds <= 0):
        parser.error('--groups, --members, --publishers and --seconds '
                     'must be positive')
    with tempfile.TemporaryDirectory() as tmp:
        with servers.RedisServer(tmp + '/single') as one:
            single = side([one], one.url, [], args.groups, args.members,
                          args.publishers, args.seconds)
            print(json.dumps({'single': single}), file=sys.stderr)
        with servers.RedisCluster(tmp + '/cluster') as cl:
            cluster = side(cl.nodes, cl.url, cl.hosts, args.groups,
                           args.members, args.publishers, args.seconds)
    print(json.dumps({
        'members': args.groups * args.members,
        'groups': args.groups,
        'publishers': args.publishers,
        'cores': multiprocessing.cpu_count(),
        'single': single,
        'cluster': cluster,
        'capacity_ratio': round(cluster['capacity_beats_per_cpu_s']
                                / single['capacity_beats_per_cpu_s'], 2),
        'server_cpu_per_beat_ratio': round(
            cluster['server_cpu_us_per_beat']
            / single['server_cpu_us_per_beat'], 2),
    }, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
