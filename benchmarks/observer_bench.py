"""The whole observer process: heartbeat's redis watch() vs a tooz poller.

What a user runs to be told who is up, measured as a process.  heartbeat's
observer is a separate Python process that builds an oslo.config conf for
the redis driver (``[heartbeat] driver = redis``, ``[heartbeat_redis]
url``, report_interval, service_down_time) and calls
``servicegroup.API(conf).watch(group, callback)``, then just lives; its
callback only counts events and notes when each MemberDown came.  The
baseline is what a tooz user writes: a separate process with a redis
coordinator that once a second calls ``get_members_with_capabilities``
(tooz's batched read of the members and their capabilities), compares each
member's capabilities with the previous read (its only way to notice a
state change) and calls ``run_watchers()`` with join and leave watchers.

N members beat at the real rate, N / report_interval beats a second, from
one child process, round robin in ticks of 0.1 s.  heartbeat's members
join with the redis driver's ``join_many`` and beat with ``publish_many``
(2000 reports a round trip); each report carries the member's next seq,
the same incarnation and the same state.  N tooz coordinators would be
too heavy at 100,000, so tooz's members are one child process writing,
pipelined, the keys tooz's redis driver writes for a member: its field of
the group hash (its capabilities, at join, and through tooz's
update_capabilities script on a state change) and, on every beat, what
``heartbeat()`` does: a PSETEX of the member's beat key, here with
membership_timeout = service_down_time.  The two sides run one after the
other on the same redis-server, flushed in between: on a 2-core machine
both at once would have each side's members and observer compete for the
other's cores.

Measured for each N and side, from /proc of the processes:

* CPU of the observer process (utime + stime, all of its threads) over a
  window of ``--window`` seconds that starts once the initial picture has
  arrived and every member has been seen up, as a share of one core
  (``cpu_share``, CPU seconds per second), and the highest 1-second
  sample; the members' and redis-server's shares beside it.
* The warm-up, apart: ``watch_return_s`` (the watch() call; for tooz,
  registering the watchers), ``initial_picture_s`` (from that call until
  the callback had an event for every member; for tooz, until the first
  read listed every member) and ``all_up_s``.
* Memory: VmRSS of the observer after the window, minus VmRSS of the same
  kind of observer watching an empty group (measured in the same run),
  divided by N.
* Detection: after the window a sample of members stops beating; the
  members' process tells the wall time each one's last publish returned,
  the observer the wall time its callback got MemberDown (tooz: the leave
  watcher's MemberLeftGroup).  Their difference, p50/p99/max, is given
  beside its bound: service_down_time + the monitor's poll interval (tooz:
  + its 1 s cycle).
* The beat rate the members achieved and, for tooz, the cycle rate
  achieved and the CPU seconds per cycle (which tell its cost when a cycle
  takes longer than a second).
* An observer without its initial picture after ``--picture-timeout``
  seconds (tooz's read of a large group that keeps changing may never end:
  its transaction is retried on every capability update) is measured from
  outside over the same window: ``initial_picture_s`` null,
  ``no_picture_within_s``, its CPU share and RSS; no detection.

``--changing 0.01`` has 1 % of the members change state (a, b, a...) per
report_interval, on both sides.  ``--groups G`` spreads the members over G
groups (heartbeat's observer then watches every group: ``watch(None)``).
``--cluster`` runs heartbeat's side on a real Redis Cluster of three
masters (``[heartbeat_redis] cluster_nodes``) instead of one server; the
redis CPU share is then the sum of the three.  tooz's side runs only on
one server with one group: its redis driver talks to one server (or a
sentinel), never to a cluster, and its observer here polls one group.
``ratio_cpu`` is tooz's CPU share over heartbeat's (``ratio_cpu_at_least``
instead when heartbeat's observer used less than one clock tick in the
window).  service_down_time defaults to 30 s here (heartbeat's own default
is 60 s) to keep a run of the three sizes under ten minutes.
Prints JSON::

    python benchmarks/observer_bench.py [--n 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import collections
from collections.abc import Callable
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from typing import Any
from typing import NamedTuple

from oslo_config import cfg
import redis

from heartbeat.conf import monitor as monitor_conf
from heartbeat.drivers.redis import RedisDriver
from heartbeat.model import Event
from heartbeat.model import Report
from heartbeat import reports
from heartbeat import servicegroup
from heartbeat.testing import config
from heartbeat.testing import redis_servers
from heartbeat.testing import servers

GROUP = 'compute'
TOOZ_GROUP = GROUP.encode()
#: Seconds between two rounds of the members' beat loop.
TICK = 0.1
#: Members joined or beating in one round trip.
BATCH = 2000
#: Seconds between two reads of the tooz observer.
TOOZ_CYCLE = 1.0
#: Seconds an empty observer runs before its memory is read.
SETTLE = 3.0
#: Spreads the members that change state over the rounds.
SPREAD = 7919
CLK_TCK = os.sysconf('SC_CLK_TCK')


def tooz_coordination() -> Any:
    """tooz.coordination, imported only by the processes of tooz's side.

    tooz brings futurist and eventlet along: heartbeat's processes, whose
    memory and CPU are measured, should hold only what a user of
    heartbeat's holds.
    """
    from tooz import coordination

    return coordination


def member_id(i: int) -> str:
    return 'member-%06d' % i


def member_index(name: str) -> int:
    return int(name[len('member-'):])


class Backend(NamedTuple):
    """Where the members beat: a server (or a cluster) and its groups."""

    url: str
    #: The cluster's nodes as [heartbeat_redis] cluster_nodes; () for one
    #: server.
    nodes: tuple[str, ...] = ()
    groups: int = 1

    def group_of(self, i: int) -> str:
        return GROUP if self.groups == 1 else '%s-%03d' % (
            GROUP, i % self.groups)


def make_conf(backend: Backend, interval: float,
              down: float) -> cfg.ConfigOpts:
    redis_opts: dict[str, Any] = {'url': backend.url}
    if backend.nodes:
        redis_opts['cluster_nodes'] = list(backend.nodes)
    return config.make_conf(
        heartbeat={'driver': 'redis', 'report_interval': interval,
                   'service_down_time': down},
        heartbeat_redis=redis_opts)


# -- /proc ----------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``."""
    with open('/proc/%d/stat' % pid, encoding='ascii',
              errors='replace') as f:
        fields = f.read().rpartition(')')[2].split()
    # Fields 14 and 15 of proc(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open('/proc/%d/status' % pid, encoding='ascii') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('/proc/%d/status has no VmRSS line' % pid)


def cpu_window(pids: dict[str, int], window: float) -> dict[str, Any]:
    """CPU share of each process over ``window`` s, sampled every second."""
    start = time.monotonic()
    first = {name: cpu_seconds(pid) for name, pid in pids.items()}
    last, last_at = first, start
    peak = dict.fromkeys(pids, 0.0)
    due = start
    while last_at - start < window:
        due += 1.0
        time.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        sample = {name: cpu_seconds(pid) for name, pid in pids.items()}
        for name in pids:
            peak[name] = max(peak[name],
                             (sample[name] - last[name]) / (now - last_at))
        last, last_at = sample, now
    wall = last_at - start
    return {'wall_s': wall, **{name: {
        'cpu_s': last[name] - first[name],
        'cpu_share': (last[name] - first[name]) / wall,
        'peak_1s_share': peak[name]} for name in pids}}


# -- child processes ------------------------------------------------------

class NoAnswer(RuntimeError):
    """A child still running gave no answer in time."""


class Child:
    """A spawned process driven through a pipe: a command, then its answer.

    The child answers ('ok', value) or ('error', traceback).
    """

    def __init__(self, name: str, target: Callable[..., None],
                 *args: Any) -> None:
        self.name = name
        ctx = multiprocessing.get_context('spawn')
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_serving, args=(target, theirs, *args),
                                daemon=True, name=name)
        self.proc.start()
        theirs.close()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def ask(self, *command: Any, timeout: float = 120.0) -> Any:
        self.conn.send(command)
        return self.answer(timeout)

    def answer(self, timeout: float = 600.0) -> Any:
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.5):
            if not self.proc.is_alive():
                raise RuntimeError('%s exited with code %s'
                                   % (self.name, self.proc.exitcode))
            if time.monotonic() > deadline:
                raise NoAnswer('%s did not answer in %.0fs'
                               % (self.name, timeout))
        kind, value = self.conn.recv()
        if kind == 'error':
            raise RuntimeError('%s failed:\n%s' % (self.name, value))
        return value

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self.ask('exit', timeout=30.0)
        except RuntimeError as err:
            # A process too busy to answer (tooz mid-cycle) is killed.
            print('%s: %s; killing it' % (self.name, err), file=sys.stderr)
        finally:
            self.proc.join(10.0)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()


def _serving(target: Callable[..., None], conn: Any, *args: Any) -> None:
    try:
        target(conn, *args)
    except Exception:
        conn.send(('error', traceback.format_exc()))


# -- members --------------------------------------------------------------

class HeartbeatMembers:
    """N members of one process, through the redis driver's batched path."""

    def __init__(self, backend: Backend, n: int, interval: float,
                 down: float) -> None:
        self.driver = RedisDriver(make_conf(backend, interval, down))
        self.driver.start()
        self.ids = [member_id(i) for i in range(n)]
        self.groups = [backend.group_of(i) for i in range(n)]
        # As members that run a while: an incarnation as ReportSequence
        # draws it, and a seq past the few small ints Python shares.
        chance = random.Random(n)
        self.incarnations = [chance.getrandbits(reports.INCARNATION_BITS)
                             for _ in range(n)]
        self.seq = [chance.randrange(10 ** 4, 10 ** 6) for _ in range(n)]
        self.states = ['a'] * n
        self.payloads = [{'host': 'host-%06d' % i} for i in range(n)]

    def join(self) -> None:
        members: dict[str, list[str]] = collections.defaultdict(list)
        for name, group in zip(self.ids, self.groups, strict=True):
            members[group].append(name)
        for group, ids in members.items():
            for first in range(0, len(ids), BATCH):
                self.driver.join_many(group, ids[first:first + BATCH])

    def beat(self, indices: list[int], flips: list[int]) -> None:
        for i in flips:
            self.states[i] = 'b' if self.states[i] == 'a' else 'a'
        now = time.time()
        beats = []
        for i in indices:
            self.seq[i] += 1
            beats.append(Report(self.ids[i], self.groups[i], self.seq[i],
                                self.incarnations[i], state=self.states[i],
                                payload=self.payloads[i], written_at=now))
        self.driver.publish_many(beats)

    def close(self) -> None:
        self.driver.stop()


class ToozMembers:
    """N members as tooz's redis driver keeps them, written pipelined."""

    def __init__(self, backend: Backend, n: int, interval: float,
                 down: float) -> None:
        url = backend.url
        self.coord: Any = tooz_coordination().get_coordinator(
            url, b'members')
        self.coord.start()
        _create_tooz_group(self.coord)
        self.client = redis.Redis.from_url(url)
        self.group_key = self.coord._encode_group_id(TOOZ_GROUP)
        self.ids = [member_id(i).encode() for i in range(n)]
        self.beat_keys = [self.coord._encode_beat_id(m) for m in self.ids]
        self.expiry_ms = int(down * 1000)
        self.states = ['a'] * n
        self.update = self.coord._get_script('update_capabilities')

    def _caps(self, i: int) -> bytes:
        return self.coord._dumps({'state': self.states[i],
                                  'host': 'host-%06d' % i})

    def join(self) -> None:
        for first in range(0, len(self.ids), BATCH):
            pipe = self.client.pipeline(transaction=False)
            for i in range(first, min(len(self.ids), first + BATCH)):
                pipe.hset(self.group_key, self.ids[i], self._caps(i))
            pipe.execute()

    def beat(self, indices: list[int], flips: list[int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i in flips:
            self.states[i] = 'b' if self.states[i] == 'a' else 'a'
            self.update(keys=[self.group_key],
                        args=[self.ids[i], self._caps(i)], client=pipe)
        for i in indices:
            pipe.psetex(self.beat_keys[i], self.expiry_ms,
                        self.coord.STILL_ALIVE)
        pipe.execute()

    def close(self) -> None:
        self.client.close()
        self.coord.stop()


MEMBERS = {'heartbeat': HeartbeatMembers, 'tooz': ToozMembers}


class BeatLoop:
    """Beats every member once per report_interval, round robin by tick.

    A stopped member keeps its turn but skips it, so that the others keep
    their rhythm.  A member changes state when its turn comes and
    ``(i + round * SPREAD) % period == 0``: 1/period of the members per
    round, different ones each round.
    """

    def __init__(self, side: Any, n: int, interval: float,
                 changing: float) -> None:
        self.side, self.n, self.interval = side, n, interval
        self.period = round(1 / changing) if changing > 0 else 0
        self.last = [0.0] * n
        self.stopped: set[int] = set()
        self.beats = self.changes = 0
        self.pos = self.round = 0
        self.carry = 0.0

    def publish(self, indices: list[int], rnd: int) -> None:
        for first in range(0, len(indices), BATCH):
            batch = [i for i in indices[first:first + BATCH]
                     if i not in self.stopped]
            flips = ([i for i in batch
                      if (i + rnd * SPREAD) % self.period == 0]
                     if self.period and rnd >= 0 else [])
            self.side.beat(batch, flips)
            done = time.time()
            for i in batch:
                self.last[i] = done
            self.beats += len(batch)
            self.changes += len(flips)

    def tick(self) -> None:
        self.carry += self.n * TICK / self.interval
        count = min(self.n, int(self.carry))
        self.carry -= count
        while count:
            take = min(count, self.n - self.pos)
            self.publish(list(range(self.pos, self.pos + take)), self.round)
            self.pos += take
            count -= take
            if self.pos == self.n:
                self.pos, self.round = 0, self.round + 1

    def command(self, conn: Any, what: str, *args: Any) -> bool:
        if what == 'stats':
            conn.send(('ok', {'beats': self.beats, 'changes': self.changes,
                              'at': time.monotonic()}))
        elif what == 'stop':
            self.stopped.update(args[0])
            conn.send(('ok', {member_id(i): self.last[i] for i in args[0]}))
        else:
            self.side.close()
            conn.send(('ok', None))
            return False
        return True

    def run(self, conn: Any) -> None:
        due = time.monotonic()
        while True:
            while conn.poll():
                if not self.command(conn, *conn.recv()):
                    return
            self.tick()
            due += TICK
            time.sleep(max(0.0, due - time.monotonic()))


def members_main(conn: Any, kind: str, backend: Backend, n: int,
                 interval: float, down: float, changing: float) -> None:
    started = time.monotonic()
    side = MEMBERS[kind](backend, n, interval, down)
    side.join()
    loop = BeatLoop(side, n, interval, changing)
    loop.publish(list(range(n)), -1)   # every member's first report
    conn.send(('ok', time.monotonic() - started))
    loop.run(conn)


# -- observers ------------------------------------------------------------

SEEN, UP = 1, 2


class EventCounter:
    """The heartbeat observer's callback: counts, and times what matters.

    One byte per member tells whether it was seen and seen up, so that the
    callback adds almost nothing to the observer's memory.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.flags = bytearray(n)
        self.seen = self.up = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.downs: dict[str, float] = {}
        self.cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        self.kinds[event.kind] += 1
        i = member_index(event.member_id)
        flags = self.flags[i]
        # Waiters are woken only when a milestone is reached: a lock per
        # event would be the callback's main cost.
        wake = False
        if not flags & SEEN:
            flags |= SEEN
            self.seen += 1
            wake = self.seen == self.n
        if event.kind == 'up' and not flags & UP:
            flags |= UP
            self.up += 1
            wake = wake or self.up == self.n
        elif event.kind == 'down' and not event.replay:
            self.downs.setdefault(event.member_id, time.time())
            wake = True
        self.flags[i] = flags
        if wake:
            with self.cond:
                self.cond.notify_all()

    def wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(ready, timeout)


def _downs(downs: dict[Any, float], names: list[str]) -> dict[str, Any]:
    wanted = set(names)
    return {'downs': {m: downs[m] for m in names if m in downs},
            'false_downs': sum(1 for m in downs if m not in wanted)}


class HeartbeatObserver:
    """A heartbeat user's observer: watch() with a callback, then live."""

    def __init__(self, conn: Any, backend: Backend, n: int,
                 interval: float, down: float) -> None:
        self.conn, self.n = conn, n
        self.sg = servicegroup.API(make_conf(backend, interval, down))
        self.counter = EventCounter(n)
        self.started = time.monotonic()
        self.sub = self.sg.watch(GROUP if backend.groups == 1 else None,
                                 self.counter)
        self.returned = time.monotonic() - self.started

    def run(self) -> None:
        counter = self.counter
        if self.n:
            counter.wait(lambda: counter.seen >= self.n, 600.0)
        else:
            time.sleep(SETTLE)
        self.conn.send(('ok', {
            'watch_return_s': self.returned,
            'initial_picture_s': time.monotonic() - self.started}))
        while self.answer(*self.conn.recv()):
            pass

    def answer(self, what: str, *args: Any) -> bool:
        counter = self.counter
        if what == 'wait_up':
            counter.wait(lambda: counter.up >= self.n, args[0])
            value: Any = {'all_up_s': time.monotonic() - self.started,
                          'members_up': counter.up}
        elif what == 'stats':
            stats = self.sg.monitor.stats if self.sg.monitor else None
            value = {'at': time.monotonic(), 'kinds': dict(counter.kinds),
                     'cycles': stats.cycles if stats else 0,
                     'pushes': stats.pushes if stats else 0,
                     'coalesced': self.sub.counters.coalesced}
        elif what == 'downs':
            names, timeout = set(args[0]), args[1]
            counter.wait(lambda: names <= counter.downs.keys(), timeout)
            value = _downs(counter.downs, args[0])
        else:
            self.sg.close()
            value = None
        self.conn.send(('ok', value))
        return what != 'exit'


def heartbeat_observer_main(conn: Any, backend: Backend, n: int,
                            interval: float, down: float) -> None:
    HeartbeatObserver(conn, backend, n, interval, down).run()


def _create_tooz_group(coord: Any) -> None:
    try:
        coord.create_group(TOOZ_GROUP).get()
    except tooz_coordination().GroupAlreadyExist:
        pass


class ToozObserver:
    """A tooz user's observer: read, compare, run_watchers, once a second."""

    def __init__(self, conn: Any, url: str, n: int) -> None:
        self.conn, self.n = conn, n
        self.coord: Any = tooz_coordination().get_coordinator(
            url, b'observer')
        self.coord.start(start_heart=True)
        _create_tooz_group(self.coord)
        self.caps: dict[bytes, Any] = {}
        self.downs: dict[str, float] = {}
        self.cycles = self.changes = 0
        self.busy = 0.0
        self.waiting: tuple[list[str], float] | None = None
        #: Seconds from the watchers' registration to the first full read.
        self.pictured: float | None = None

    def _left(self, event: Any) -> None:
        self.downs.setdefault(event.member_id.decode(), time.time())

    def cycle(self) -> None:
        started = time.monotonic()
        caps = self.coord.get_members_with_capabilities(TOOZ_GROUP).get()
        if self.cycles:
            old = self.caps
            self.changes += sum(1 for m, c in caps.items()
                                if old.get(m, c) != c)
        self.caps = caps
        self.coord.run_watchers()
        self.cycles += 1
        self.busy += time.monotonic() - started

    def serve(self) -> bool:
        while self.conn.poll():
            what, *args = self.conn.recv()
            if what == 'wait_up':
                # A member tooz lists is up: the first read is the picture.
                self.conn.send(('ok', {'all_up_s': self.pictured,
                                       'members_up': len(self.caps)}))
            elif what == 'stats':
                self.conn.send(('ok', {
                    'at': time.monotonic(), 'cycles': self.cycles,
                    'busy_s': self.busy, 'changes': self.changes}))
            elif what == 'downs':
                self.waiting = (args[0], time.monotonic() + args[1])
            else:
                self.coord.stop()
                self.conn.send(('ok', None))
                return False
        if self.waiting is not None:
            names, deadline = self.waiting
            if (set(names) <= set(self.downs)
                    or time.monotonic() > deadline):
                self.conn.send(('ok', _downs(self.downs, names)))
                self.waiting = None
        return True

    def run(self) -> None:
        started = time.monotonic()
        self.coord.watch_join_group(TOOZ_GROUP, lambda event: None)
        self.coord.watch_leave_group(TOOZ_GROUP, self._left)
        returned = time.monotonic() - started
        while True:
            due = time.monotonic() + TOOZ_CYCLE
            self.cycle()
            if self.pictured is None and len(self.caps) >= self.n:
                self.pictured = time.monotonic() - started
                self.conn.send(('ok', {'watch_return_s': returned,
                                       'initial_picture_s': self.pictured}))
            if self.pictured is not None and not self.serve():
                return
            time.sleep(max(0.0, due - time.monotonic()))


def tooz_observer_main(conn: Any, backend: Backend, n: int,
                       interval: float, down: float) -> None:
    ToozObserver(conn, backend.url, n).run()


OBSERVERS = {'heartbeat': heartbeat_observer_main,
             'tooz': tooz_observer_main}


# -- the run --------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1,
                      math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def empty_rss(kind: str, backend: Backend, args: argparse.Namespace) -> int:
    """VmRSS of an observer of this kind watching an empty group."""
    observer = Child('%s observer' % kind, OBSERVERS[kind], backend, 0,
                     args.report_interval, args.down_time)
    try:
        observer.answer(timeout=120.0)
        time.sleep(SETTLE)
        return rss_bytes(observer.pid)
    finally:
        observer.close()


def detection(members: Child, observer: Child, n: int, sample: int,
              timeout: float) -> dict[str, Any]:
    chosen = sorted(random.Random(n).sample(range(n), sample))
    last = members.ask('stop', chosen)
    names = sorted(last)
    got = observer.ask('downs', names, timeout, timeout=timeout + 60.0)
    late = [got['downs'][m] - last[m] for m in names if m in got['downs']]
    return {'detection_p50_s': percentile(late, 50),
            'detection_p99_s': percentile(late, 99),
            'detection_max_s': percentile(late, 100),
            'detection_sample': sample, 'detected': len(late),
            'false_downs': got['false_downs']}


def rates(before: dict[str, Any], after: dict[str, Any],
          keys: tuple[str, ...]) -> dict[str, float]:
    wall = after['at'] - before['at']
    return {key + '_per_s': (after[key] - before[key]) / wall
            for key in keys}


def cpu_of_run(members: Child, observer: Child, server_pids: list[int],
               args: argparse.Namespace) -> dict[str, Any]:
    """The CPU window of every process, the members' rates around it.

    Measured from outside (/proc): it holds for an observer too busy to
    answer its pipe too.
    """
    servers_cpu = {'redis%d' % i: pid for i, pid in enumerate(server_pids)}
    beats = members.ask('stats')
    cpu = cpu_window({'observer': observer.pid, 'members': members.pid,
                      **servers_cpu}, args.window)
    beats_after = members.ask('stats')
    return {
        'window_s': cpu['wall_s'],
        'cpu_s': cpu['observer']['cpu_s'],
        'cpu_share': cpu['observer']['cpu_share'],
        'cpu_s_per_s': cpu['observer']['cpu_share'],
        'peak_1s_share': cpu['observer']['peak_1s_share'],
        'members_cpu_share': cpu['members']['cpu_share'],
        'redis_cpu_share': sum(cpu[name]['cpu_share']
                               for name in servers_cpu),
        **rates(beats, beats_after, ('beats', 'changes')),
    }


def steady_state(kind: str, members: Child, observer: Child,
                 server_pids: list[int], args: argparse.Namespace
                 ) -> dict[str, Any]:
    """The CPU window, with the counters of both children around it."""
    seen = observer.ask('stats')
    out = cpu_of_run(members, observer, server_pids, args)
    seen_after = observer.ask('stats')
    if kind == 'tooz':
        cycles = seen_after['cycles'] - seen['cycles']
        out.update(rates(seen, seen_after, ('cycles',)))
        out['cpu_s_per_cycle'] = out['cpu_s'] / max(1, cycles)
        out['busy_s_per_cycle'] = ((seen_after['busy_s'] - seen['busy_s'])
                                   / max(1, cycles))
        out.update(rates(seen, seen_after, ('changes',)))
        out['changes_seen_per_s'] = out.pop('changes_per_s')
    else:
        out.update(rates(seen, seen_after, ('cycles', 'pushes')))
        out['events_in_window'] = {
            k: v - seen['kinds'].get(k, 0)
            for k, v in seen_after['kinds'].items()
            if v != seen['kinds'].get(k, 0)}
        out['coalesced'] = seen_after['coalesced']
    return out


def run_side(kind: str, backend: Backend, server_pids: list[int], n: int,
             baseline: int, args: argparse.Namespace) -> dict[str, Any]:
    conf = make_conf(backend, args.report_interval, args.down_time)
    poll = (monitor_conf.poll_interval(conf) if kind == 'heartbeat'
            else TOOZ_CYCLE)
    members = Child('%s members' % kind, members_main, kind, backend, n,
                    args.report_interval, args.down_time, args.changing)
    observer = None
    try:
        out: dict[str, Any] = {'members_join_s': members.answer()}
        observer = Child('%s observer' % kind, OBSERVERS[kind], backend, n,
                         args.report_interval, args.down_time)
        try:
            out.update(observer.answer(args.picture_timeout))
        except NoAnswer:
            # tooz's read of a large group that keeps changing may never
            # end (its transaction is retried on every capability
            # update): what it costs meanwhile is still measured, from
            # outside, and it has no picture, so no detection.
            out['initial_picture_s'] = None
            out['no_picture_within_s'] = args.picture_timeout
            out.update(cpu_of_run(members, observer, server_pids, args))
            out['target_beats_per_s'] = n / args.report_interval
            out['rss_bytes'] = rss_bytes(observer.pid)
            return out
        out.update(observer.ask('wait_up', args.report_interval + poll
                                + 60.0, timeout=600.0))
        out.update(steady_state(kind, members, observer, server_pids,
                                args))
        out['target_beats_per_s'] = n / args.report_interval
        rss = rss_bytes(observer.pid)
        out['rss_bytes'] = rss
        out['rss_bytes_per_member'] = (rss - baseline) / n
        out['detection_bound_s'] = args.down_time + poll
        out.update(detection(members, observer, n,
                             args.sample or max(1, min(100, n // 10)),
                             args.down_time + args.report_interval
                             + poll + 30.0))
        return out
    finally:
        if observer is not None:
            observer.close()
        members.close()


def ratio(tooz: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """tooz's CPU share over heartbeat's, or a floor of it.

    The process clock counts in ticks of 1/CLK_TCK s: an observer that
    used less than one tick over its window reads 0, and the ratio is only
    known to be at least tooz's share over one tick's share.
    """
    if ours['cpu_share'] > 0:
        return {'ratio_cpu': tooz['cpu_share'] / ours['cpu_share']}
    tick_share = 1.0 / CLK_TCK / ours['window_s']
    return {'ratio_cpu': None,
            'ratio_cpu_at_least': tooz['cpu_share'] / tick_share}


def _servers(tmp: str, args: argparse.Namespace) -> Any:
    """The redis fixture of this run: one server, or a 3-master cluster."""
    if args.cluster:
        return redis_servers.RedisCluster(tmp)
    return servers.RedisServer(tmp)


def run(args: argparse.Namespace) -> dict[str, Any]:
    alone = args.skip_tooz or args.cluster or args.groups > 1
    kinds = ['heartbeat'] + ([] if alone else ['tooz'])
    out: dict[str, Any] = {
        'benchmark': 'observer_bench',
        'report_interval_s': args.report_interval,
        'service_down_time_s': args.down_time,
        'changing_per_interval': args.changing,
        'groups': args.groups,
        'redis': 'cluster of 3 masters' if args.cluster else 'one server',
        'tooz_cycle_s': TOOZ_CYCLE}
    if args.cluster and not args.skip_tooz:
        out['tooz'] = ('not run: its redis driver connects to one server '
                       'or a sentinel, not to a cluster')
    elif args.groups > 1 and not args.skip_tooz:
        out['tooz'] = 'not run: its observer here polls one group'
    with tempfile.TemporaryDirectory() as tmp, _servers(tmp, args) as fix:
        nodes = fix.nodes if args.cluster else [fix]
        pids = []
        for node in nodes:
            assert node.proc is not None
            pids.append(node.proc.pid)
        backend = Backend(fix.url, tuple(fix.hosts) if args.cluster else (),
                          args.groups)

        def flush() -> None:
            for node in nodes:
                node.execute('FLUSHALL')

        baselines = {}
        for kind in kinds:
            flush()
            baselines[kind] = empty_rss(kind, backend, args)
        out['empty_observer_rss_bytes'] = baselines
        out['sizes'] = {}
        for n in args.n:
            row: dict[str, Any] = {}
            for kind in kinds:
                flush()
                try:
                    row[kind] = run_side(kind, backend, pids, n,
                                         baselines[kind], args)
                except RuntimeError as err:
                    # A side that cannot keep up at this size is reported
                    # so, and the other sizes are still measured.
                    row[kind] = {'error': str(err).splitlines()[0]}
                print(json.dumps({'n': n, kind: row[kind]}),
                      file=sys.stderr, flush=True)
            if all('cpu_share' in side for side in row.values()) and (
                    'tooz' in row):
                row.update(ratio(row['tooz'], row['heartbeat']))
            out['sizes'][str(n)] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--n', type=int, nargs='+',
                        default=[1000, 10000, 100000])
    parser.add_argument('--window', type=float, default=20.0,
                        help='Seconds of the CPU window (default 20).')
    parser.add_argument('--report-interval', type=float, default=10.0)
    parser.add_argument('--down-time', type=float, default=30.0,
                        help='service_down_time, and tooz\'s '
                             'membership_timeout (default 30).')
    parser.add_argument('--changing', type=float, default=0.0,
                        help='Fraction of the members changing state per '
                             'report_interval (default 0).')
    parser.add_argument('--sample', type=int, default=0,
                        help='Members stopped to time detection (default: '
                             'a tenth of N, at most 100).')
    parser.add_argument('--groups', type=int, default=1,
                        help='Groups the members are spread over '
                             '(default 1).')
    parser.add_argument('--cluster', action='store_true',
                        help='Run on a Redis Cluster of three masters '
                             '(heartbeat only).')
    parser.add_argument('--picture-timeout', type=float, default=600.0,
                        help='Seconds an observer may take to its initial '
                             'picture; one still without it then is '
                             'measured from outside (default 600).')
    parser.add_argument('--skip-tooz', action='store_true',
                        help='Measure the heartbeat observer only.')
    args = parser.parse_args()
    if args.groups < 1:
        parser.error('--groups must be at least 1')
    started = time.monotonic()
    result = run(args)
    result['elapsed_s'] = time.monotonic() - started
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
