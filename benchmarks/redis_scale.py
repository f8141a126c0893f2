"""Monitor CPU per cycle: heartbeat's redis driver vs tooz, same redis.

N members beat every 10 s; a monitor reads once a second, so each cycle
sees N/10 changed members.  heartbeat's monitor reads only the changes
(``snapshot(since=cursor)``) and folds them into the monitor's updater;
tooz's monitor must call ``get_members_with_capabilities`` and
``run_watchers`` (join/leave watchers), which read the whole group, and
fold the same updater.  CPU is this process's CPU time (the monitor's),
the server's is reported beside it.

Cycles are measured in the steady state: every member has been seen
beating once before, so it is up and its beats are plain beats, as in a
monitor that has run for one report interval.  The warm-up fold, where
every member is seen changing for the first time and gets its MemberUp,
is reported on its own as ``warm_up_fold_cpu_s``.
"""

from __future__ import annotations

import time
from typing import Any
import uuid

from oslo_config import cfg
import redis
from tooz import coordination

from heartbeat import conf as hb_conf
from heartbeat.drivers.redis import RedisDriver
from heartbeat.drivers import tooz as tooz_driver
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.fetcher import Fetcher
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater

BEAT_PERIOD = 10.0
CYCLE = 1.0
BATCH = 2000
GROUP = 'compute'


def _conf(url: str, prefix: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf([], project='heartbeat')
    conf.set_override('url', url, 'heartbeat_redis')
    conf.set_override('prefix', prefix, 'heartbeat_redis')
    conf.set_override('socket_timeout', 60.0, 'heartbeat_redis')
    return conf


def _server_cpu(client: redis.Redis) -> float:
    info = client.info('cpu')
    return float(info['used_cpu_user']) + float(info['used_cpu_sys'])


def _report(i: int, seq: int) -> Report:
    return Report(member_id='member-%06d' % i, group=GROUP, seq=seq,
                  incarnation=1000 + i, state='enabled', score=3400,
                  payload={'host': 'host-%06d' % i}, written_at=time.time())


class Cycles:
    """CPU of the monitor's cycles: the read, the fold, and the server's."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.read_cpu: list[float] = []
        self.fold_cpu: list[float] = []
        self.server_cpu: list[float] = []
        self.changed: list[int] = []

    def measure(self, read: Any, fold: Any) -> None:
        server = _server_cpu(self.client)
        start = time.process_time()
        snap = read()
        middle = time.process_time()
        fold(snap)
        end = time.process_time()
        self.read_cpu.append(middle - start)
        self.fold_cpu.append(end - middle)
        self.server_cpu.append(_server_cpu(self.client) - server)
        self.changed.append(len(snap.reports))

    def summary(self, n: int) -> dict[str, Any]:
        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        read, fold = mean(self.read_cpu), mean(self.fold_cpu)
        return {
            'cycles': len(self.read_cpu),
            'reports_read_per_cycle': mean([float(c) for c in self.changed]),
            'read_cpu_s_per_cycle': read,
            'fold_cpu_s_per_cycle': fold,
            'monitor_cpu_s_per_cycle': read + fold,
            'monitor_cpu_us_per_member': (read + fold) / n * 1e6,
            'monitor_core_fraction': (read + fold) / CYCLE,
            'members_per_cpu_second': n / (read + fold),
            'read_members_per_cpu_second': n / read,
            'server_cpu_s_per_cycle': mean(self.server_cpu),
        }


def _fold(updater: Updater) -> Any:
    def fold(snap: Snapshot) -> None:
        now = time.monotonic()
        updater.apply(snap, now, time.time(), GROUP)
        updater.expire(now, time.time(), [GROUP])
    return fold


def _check(updater: Updater, n: int) -> None:
    """Both sides must have folded the same picture: N members, all up."""
    members = updater.repository.members(GROUP, time.monotonic())
    assert len(members) == n
    assert all(m.status is Status.UP for m in members)


def _timed(fold: Any, snap: Snapshot) -> float:
    start = time.process_time()
    fold(snap)
    return time.process_time() - start


def heartbeat_side(url: str, n: int, cycles: int) -> dict[str, Any]:
    prefix = 'bench%s' % uuid.uuid4().hex[:6]
    publisher = RedisDriver(_conf(url, prefix))
    observer = RedisDriver(_conf(url, prefix))
    publisher.start()
    observer.start()
    try:
        ids = ['member-%06d' % i for i in range(n)]
        for first in range(0, n, BATCH):
            publisher.join_many(GROUP, ids[first:first + BATCH])
        for first in range(0, n, BATCH):
            publisher.publish_many([_report(i, 1) for i in
                                    range(first, min(n, first + BATCH))])
        fetcher = Fetcher(observer)
        updater = Updater(Repository(60.0))
        fold = _fold(updater)

        def read() -> Snapshot:
            return fetcher.fetch([GROUP])[0][1]

        fold(read())   # the first, complete read
        seqs = [2] * n
        for first in range(0, n, BATCH):
            publisher.publish_many([_report(i, 2) for i in
                                    range(first, min(n, first + BATCH))])
        warm_up = _timed(fold, read())
        per_cycle = max(1, int(n * CYCLE / BEAT_PERIOD))
        nxt = 0
        stats = Cycles(observer.client)
        for _ in range(cycles):
            batch = []
            for _ in range(per_cycle):
                seqs[nxt] += 1
                batch.append(_report(nxt, seqs[nxt]))
                nxt = (nxt + 1) % n
            for first in range(0, len(batch), BATCH):
                publisher.publish_many(batch[first:first + BATCH])
            stats.measure(read, fold)
        _check(updater, n)
        return dict(stats.summary(n), warm_up_fold_cpu_s=warm_up)
    finally:
        publisher.client.delete(*[k for k in publisher.client.scan_iter(
            '%s:*' % prefix)])
        publisher.stop()
        observer.stop()


def tooz_side(url: str, n: int, cycles: int) -> dict[str, Any]:
    namespace = 'bench%s' % uuid.uuid4().hex[:6]
    coord: Any = coordination.get_coordinator(
        url, b'monitor', namespace=namespace, membership_timeout='3600')
    coord.start(start_heart=False)
    group = GROUP.encode()
    coord.create_group(group).get()
    client = redis.Redis.from_url(url)
    # Write tooz's own layout with tooz's own encoders, pipelined: a join
    # per member through N coordinators would only measure set-up.
    encoded_group = coord._encode_group_id(group)

    def write(members: list[int], seq: int) -> None:
        pipe = client.pipeline(transaction=False)
        for i in members:
            member = ('member-%06d' % i).encode()
            caps = tooz_driver.to_capabilities(_report(i, seq))
            pipe.hset(encoded_group, member, coord._dumps(caps))
            pipe.psetex(coord._encode_beat_id(member), 3600 * 1000,
                        coord.STILL_ALIVE)
        pipe.execute()

    try:
        for first in range(0, n, BATCH):
            write(list(range(first, min(n, first + BATCH))), 1)
        coord.watch_join_group(group, lambda event: None)
        coord.watch_leave_group(group, lambda event: None)
        updater = Updater(Repository(60.0))
        fold = _fold(updater)

        def read() -> Snapshot:
            members = coord.get_members_with_capabilities(group).get()
            coord.run_watchers()
            reports = []
            for raw_id, caps in members.items():
                item = tooz_driver.from_capabilities(GROUP, raw_id.decode(),
                                                     caps)
                if isinstance(item, Report):
                    reports.append(item)
            return Snapshot(tuple(reports))

        fold(read())
        seq = 2
        for first in range(0, n, BATCH):
            write(list(range(first, min(n, first + BATCH))), seq)
        warm_up = _timed(fold, read())
        per_cycle = max(1, int(n * CYCLE / BEAT_PERIOD))
        nxt = 0
        stats = Cycles(client)
        for _ in range(cycles):
            seq += 1
            changed = [(nxt + k) % n for k in range(per_cycle)]
            nxt = (nxt + per_cycle) % n
            for first in range(0, per_cycle, BATCH):
                write(changed[first:first + BATCH], seq)
            stats.measure(read, fold)
        _check(updater, n)
        return dict(stats.summary(n), warm_up_fold_cpu_s=warm_up)
    finally:
        client.delete(*[k for k in client.scan_iter('%s*' % namespace)])
        client.close()
        coord.stop()


def run(url: str, sizes: tuple[int, ...] = (1000, 10000, 100000)
        ) -> dict[str, Any]:
    out: dict[str, Any] = {'beat_period_s': BEAT_PERIOD,
                           'monitor_cycle_s': CYCLE, 'sizes': {}}
    for n in sizes:
        # More cycles where one is short, so that timer noise averages out.
        cycles = 30 if n <= 1000 else 10 if n <= 10000 else 5
        ours = heartbeat_side(url, n, cycles)
        theirs = tooz_side(url, n, cycles)
        out['sizes'][str(n)] = {
            'heartbeat_redis': ours, 'tooz_redis': theirs,
            'members_per_cpu_second_ratio': (
                ours['members_per_cpu_second']
                / theirs['members_per_cpu_second']),
            'read_members_per_cpu_second_ratio': (
                ours['read_members_per_cpu_second']
                / theirs['read_members_per_cpu_second']),
        }
    return out
