"""Monitor CPU per cycle: heartbeat's redis driver vs tooz, same redis.

N members beat every 10 s; a monitor reads once a second, so each cycle
sees N/10 changed members.  heartbeat's monitor reads only the changes
(``snapshot(since=cursor)``) and folds them into the monitor's updater;
tooz's monitor must call ``get_members_with_capabilities`` and
``run_watchers`` (join/leave watchers), which read the whole group, and
fold the same updater.  CPU is this process's CPU time (the monitor's),
the server's is reported beside it.  The members beat from a child
process through the real publish path, so that the monitor's process (and
its garbage collector) holds what a monitor holds and nothing more.

Cycles are measured in the steady state: every member has been seen
beating once before, so it is up and its beats are plain beats, as in a
monitor that has run for one report interval.  The warm-up fold, where
every member is seen changing for the first time and gets its MemberUp,
is reported on its own as ``warm_up_fold_cpu_s``.

The monitor's CPU includes the garbage collector's, as it does in a real
observer; ``gc_cpu_s_per_cycle`` shows that share.  A full collection
comes every few dozen cycles and costs tens of milliseconds, so enough
cycles are measured on both sides for it to be spread as in a long run.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from typing import Any
import uuid

from oslo_config import cfg
import redis
from tooz import coordination

from heartbeat.drivers.redis import RedisDriver
from heartbeat.drivers import tooz as tooz_driver
from heartbeat.model import Report
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat.monitor.fetcher import Fetcher
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater
from heartbeat.testing import config

BEAT_PERIOD = 10.0
CYCLE = 1.0
BATCH = 2000
GROUP = 'compute'


def _conf(url: str, prefix: str) -> cfg.ConfigOpts:
    return config.make_conf(heartbeat_redis={
        'url': url, 'prefix': prefix, 'socket_timeout': 60.0})


def _server_cpu(client: redis.Redis) -> float:
    info = client.info('cpu')
    return float(info['used_cpu_user']) + float(info['used_cpu_sys'])


def _report(i: int, seq: int) -> Report:
    return Report(member_id='member-%06d' % i, group=GROUP, seq=seq,
                  incarnation=1000 + i, state='enabled', score=3400,
                  payload={'host': 'host-%06d' % i}, written_at=time.time())


class GcTimer:
    """CPU time the garbage collector spends while it is installed."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.collections = 0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == 'start':
            self._started = time.process_time()
        else:
            self.spent += time.process_time() - self._started
            self.collections += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


class Cycles:
    """CPU of the monitor's cycles: the read, the fold, and the server's."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.read_cpu: list[float] = []
        self.fold_cpu: list[float] = []
        self.server_cpu: list[float] = []
        self.changed: list[int] = []
        self.gc = GcTimer()

    def measure(self, read: Any, fold: Any) -> None:
        server = _server_cpu(self.client)
        with self.gc:
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
            'gc_cpu_s_per_cycle': self.gc.spent / len(self.read_cpu),
            'gc_collections': self.gc.collections,
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


class Members:
    """N members beating from a child process.

    The members use the real publish path (the redis driver's, or tooz's
    own layout and encoders) but not the monitor's process: its memory and
    garbage collector hold only what a monitor holds.
    """

    def __init__(self, kind: str, url: str, namespace: str, n: int) -> None:
        ctx = multiprocessing.get_context('spawn')
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_members_main, daemon=True,
                                args=(kind, url, namespace, n, child))
        self.proc.start()
        self._wait()

    def beat(self, members: list[int]) -> None:
        """Every listed member beats once (its seq grows by one)."""
        self.conn.send(('beat', members))
        self._wait()

    def close(self) -> None:
        self.conn.send(('exit', []))
        self._wait()
        self.proc.join(60)

    def _wait(self) -> None:
        while not self.conn.poll(1.0):
            if not self.proc.is_alive():
                raise RuntimeError('member process exited with code %s'
                                   % self.proc.exitcode)
        answer = self.conn.recv()
        if answer != 'ok':
            raise RuntimeError('member process failed: %s' % answer)


def _members_main(kind: str, url: str, namespace: str, n: int,
                  conn: Any) -> None:
    try:
        beat, close = (_heartbeat_members if kind == 'heartbeat'
                       else _tooz_members)(url, namespace, n)
    except Exception as err:
        conn.send(repr(err))
        return
    seqs = [1] * n
    conn.send('ok')
    while True:
        what, members = conn.recv()
        try:
            if what == 'exit':
                close()
                conn.send('ok')
                return
            for i in members:
                seqs[i] += 1
            for first in range(0, len(members), BATCH):
                beat([(i, seqs[i]) for i in members[first:first + BATCH]])
            conn.send('ok')
        except Exception as err:
            conn.send(repr(err))
            return


Beats = list[tuple[int, int]]


def _heartbeat_members(url: str, prefix: str, n: int) -> tuple[Any, Any]:
    publisher = RedisDriver(_conf(url, prefix))
    publisher.start()
    ids = ['member-%06d' % i for i in range(n)]
    for first in range(0, n, BATCH):
        publisher.join_many(GROUP, ids[first:first + BATCH])
        publisher.publish_many([_report(i, 1) for i in
                                range(first, min(n, first + BATCH))])

    def beat(beats: Beats) -> None:
        publisher.publish_many([_report(i, seq) for i, seq in beats])

    def close() -> None:
        publisher.client.delete(*publisher.client.scan_iter(
            '%s:*' % prefix))
        publisher.stop()
    return beat, close


def _tooz_members(url: str, namespace: str, n: int) -> tuple[Any, Any]:
    # tooz's own layout with tooz's own encoders, pipelined: a join per
    # member through N coordinators would only measure set-up.
    coord: Any = coordination.get_coordinator(
        url, b'members', namespace=namespace, membership_timeout='3600')
    coord.start(start_heart=False)
    coord.create_group(GROUP.encode()).get()
    client = redis.Redis.from_url(url)
    encoded_group = coord._encode_group_id(GROUP.encode())

    def beat(beats: Beats) -> None:
        pipe = client.pipeline(transaction=False)
        for i, seq in beats:
            member = ('member-%06d' % i).encode()
            caps = tooz_driver.to_capabilities(_report(i, seq))
            pipe.hset(encoded_group, member, coord._dumps(caps))
            pipe.psetex(coord._encode_beat_id(member), 3600 * 1000,
                        coord.STILL_ALIVE)
        pipe.execute()

    def close() -> None:
        client.delete(*client.scan_iter('%s*' % namespace))
        client.close()
        coord.stop()

    for first in range(0, n, BATCH):
        beat([(i, 1) for i in range(first, min(n, first + BATCH))])
    return beat, close


def _cycles(members: Members, n: int, cycles: int, read: Any, fold: Any,
            client: redis.Redis) -> tuple[Cycles, float]:
    """The complete first read, the warm-up, then the measured cycles."""
    fold(read())
    members.beat(list(range(n)))
    warm_up = _timed(fold, read())
    per_cycle = max(1, int(n * CYCLE / BEAT_PERIOD))
    nxt = 0
    stats = Cycles(client)
    for _ in range(cycles):
        members.beat([(nxt + k) % n for k in range(per_cycle)])
        nxt = (nxt + per_cycle) % n
        stats.measure(read, fold)
    return stats, warm_up


def heartbeat_side(url: str, n: int, cycles: int) -> dict[str, Any]:
    prefix = 'bench%s' % uuid.uuid4().hex[:6]
    members = Members('heartbeat', url, prefix, n)
    observer = RedisDriver(_conf(url, prefix))
    observer.start()
    try:
        fetcher = Fetcher(observer)
        updater = Updater(Repository(60.0))

        def read() -> Snapshot:
            return fetcher.fetch([GROUP])[0][1]

        stats, warm_up = _cycles(members, n, cycles, read, _fold(updater),
                                 observer.client)
        _check(updater, n)
        return dict(stats.summary(n), warm_up_fold_cpu_s=warm_up)
    finally:
        observer.stop()
        members.close()


def tooz_side(url: str, n: int, cycles: int) -> dict[str, Any]:
    namespace = 'bench%s' % uuid.uuid4().hex[:6]
    members = Members('tooz', url, namespace, n)
    coord: Any = coordination.get_coordinator(
        url, b'monitor', namespace=namespace, membership_timeout='3600')
    coord.start(start_heart=False)
    group = GROUP.encode()
    client = redis.Redis.from_url(url)
    try:
        coord.watch_join_group(group, lambda event: None)
        coord.watch_leave_group(group, lambda event: None)
        updater = Updater(Repository(60.0))

        def read() -> Snapshot:
            got = coord.get_members_with_capabilities(group).get()
            coord.run_watchers()
            reports = []
            for raw_id, caps in got.items():
                item = tooz_driver.from_capabilities(GROUP, raw_id.decode(),
                                                     caps)
                if isinstance(item, Report):
                    reports.append(item)
            return Snapshot(tuple(reports))

        stats, warm_up = _cycles(members, n, cycles, read, _fold(updater),
                                 client)
        _check(updater, n)
        return dict(stats.summary(n), warm_up_fold_cpu_s=warm_up)
    finally:
        client.close()
        coord.stop()
        members.close()


def run(url: str, sizes: tuple[int, ...] = (1000, 10000, 100000)
        ) -> dict[str, Any]:
    out: dict[str, Any] = {'beat_period_s': BEAT_PERIOD,
                           'monitor_cycle_s': CYCLE, 'sizes': {}}
    for n in sizes:
        # More cycles where one is short, so that timer noise and the
        # collector's full collections average out.
        cycles = 100 if n <= 1000 else 40 if n <= 10000 else 10
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
