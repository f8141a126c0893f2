"""The monitor: one fetch loop per driver, from reads to subscribers.

::

    fetch loop --read--> Fetcher --snapshots--> Updater --events--> Dispatcher
                                   (Repository)                   (queues)

One thread per :class:`Monitor` (so per driver instance) reads every
watched group, however many groups, members and subscribers there are.  It
wakes at the earliest of:

* the next poll (``[heartbeat_monitor] poll_interval``);
* the earliest deadline of a live member, so that a member is declared
  down the moment its service_down_time runs out rather than at the next
  poll (the loop reads once more first: a member that beat meanwhile is not
  declared down);
* a push from a driver with the PUSH capability (only the pushed group is
  read then).

Reads happen outside the state lock, so queries (:meth:`Monitor.members`)
are answered from memory even while the backend is slow.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
import math
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat import clock as clock_mod
from heartbeat.conf import monitor as monitor_conf
from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat import exception
from heartbeat import heap
from heartbeat.metrics.timing import Histogram
from heartbeat.model import Event
from heartbeat.model import Member
from heartbeat.model import MemberDown
from heartbeat.monitor.dispatcher import Callback
from heartbeat.monitor.dispatcher import Dispatcher
from heartbeat.monitor.dispatcher import Subscription
from heartbeat.monitor.fetcher import Fetcher
from heartbeat.monitor.fetcher import Read
from heartbeat.monitor.picture import Picture
from heartbeat.monitor.repository import Key
from heartbeat.monitor.repository import Repository
from heartbeat.monitor.updater import Updater

LOG = logging.getLogger(__name__)

#: Seconds the loop sleeps at most while no group is watched.
IDLE_WAIT = 60.0

#: Seconds :meth:`Monitor.stop` waits for the loop thread by default.
STOP_TIMEOUT = 5.0


@dataclasses.dataclass
class MonitorStats:
    """How the fetch loop has fared so far."""

    cycles: int = 0
    fetch_errors: int = 0
    consecutive_fetch_errors: int = 0
    last_error: str | None = None
    events: int = 0
    pushes: int = 0
    #: Graces granted after the backend could not be seen (failed or
    #: slow reads) and was read again.
    graces: int = 0
    #: Wall-clock seconds (monotonic) of the last fetch+update cycle.
    last_cycle_seconds: float = 0.0
    #: CPU seconds of the loop thread in the last fetch+update cycle.
    last_cycle_cpu: float = 0.0
    #: CPU seconds of the loop thread in every cycle so far.
    total_cpu: float = 0.0


class Monitor:
    """Reads watched groups through one driver and pushes events."""

    def __init__(self, driver: Driver, conf: cfg.ConfigOpts,
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC),
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.clock = clock_mod.as_clock(clock)
        self.wall_clock = wall_clock
        self.poll_interval = monitor_conf.poll_interval(conf)
        #: Least time between two reads made for pushes (see _step).
        self.push_batch: float = conf.heartbeat_monitor.push_batch_interval
        self._push_read_at = -math.inf
        #: Set by stop(): ends a wait for more pushes at once.
        self._halt = threading.Event()
        report_interval = float(conf.heartbeat.report_interval)
        #: A read slower than this leaves the observer blind meanwhile.
        self.blind_after = report_interval
        #: How long members have to be seen after a blind spell: a whole
        #: service_down_time, as if last seen when the backend was read
        #: again (the observer could not tell what happened meanwhile).
        self.grace_seconds = float(conf.heartbeat.service_down_time)
        # First and last start of the reads that failed in a row.
        self._blind_since: float | None = None
        self._blind_last = 0.0
        mon = conf.heartbeat_monitor
        self.queue_size: int = mon.subscriber_queue_size
        self.slow_after: float = mon.slow_subscriber_warning
        self.repository = Repository(
            conf.heartbeat.service_down_time, wall_clock=wall_clock,
            phi_threshold=conf.heartbeat.phi_threshold)
        self.updater = Updater(self.repository)
        self.fetcher = Fetcher(driver)
        self.dispatcher = Dispatcher()
        self.stats = MonitorStats()
        #: Seconds of each fetch+update cycle.
        self.cycle_seconds = Histogram()
        #: Seconds from a member's last seen change to its MemberDown.
        self.detection_seconds = Histogram()
        # _io_lock orders read+apply pairs (an older read is never applied
        # after a newer one); _lock guards the in-memory state.  Order:
        # _io_lock, then _lock, then the dispatcher's lock.
        self._io_lock = threading.Lock()
        self._lock = threading.RLock()
        self._groups: dict[str | None, int] = {}
        #: Subscribers waiting for their first picture (see watch()).
        self._pending: list[Subscription] = []
        self._pushed: set[str] = set()
        #: A read of the step brought many reports (see heap.trim).
        self._big_read = False
        self._push_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._cancel_listen: Callable[[], None] | None = None

    # -- subscribing -------------------------------------------------------

    def watch(self, group: str | None,
              callback: Callback | None = None) -> Subscription:
        """Subscribe to the events of ``group`` (None: every group).

        Returns at once, without I/O.  The loop thread reads a group
        watched for the first time completely and shows the subscriber the
        current picture (replay events, described as the subscriber takes
        them: :mod:`heartbeat.monitor.picture`), then every change.
        While that first read fails, the subscriber receives nothing and
        the read is retried every poll interval (``stats`` and the log say
        why).
        """
        if self._stopping:
            raise exception.HeartbeatError(
                'This monitor is stopped; create a new servicegroup.API to '
                'watch again.')
        sub = Subscription(group, callback, self.queue_size,
                           slow_after=self.slow_after,
                           on_cancel=self._unsubscribed)
        with self._lock:
            self._pending.append(sub)
        self._start()
        self._wake.set()
        return sub

    def _admit_pending(self) -> None:
        """Give waiting subscribers their picture, until a read fails.

        Runs in the loop thread: the picture is ordered before the next
        change the loop dispatches.  Those left waiting are tried again on
        the next step.
        """
        with self._io_lock:
            with self._lock:
                waiting = list(self._pending)
            for sub in waiting:
                group = sub.group
                started = self.clock()
                reads: list[Read] = []
                if not self.covers(group):
                    try:
                        reads = self.fetcher.fetch([group], full=True)
                    except Exception as err:
                        self._fetch_failed(err)
                        return
                with self._lock:
                    if sub not in self._pending:
                        continue  # cancelled meanwhile
                    self._pending.remove(sub)
                    if reads:
                        # Nobody watches a named group before its first
                        # read: its events would be told to no one.
                        self._apply(reads, self.clock(), started, [group],
                                    quiet=group is not None)
                    self._groups[group] = self._groups.get(group, 0) + 1
                    self.dispatcher.add(sub, Picture(
                        self.updater.picture_ids(group), self._describe,
                        self._lock))

    def _describe(self, keys: list[Key]) -> list[Event]:
        """Replay events of ``keys`` now (a picture's; _lock is held)."""
        return self.updater.describe(keys, self.clock(), self.wall_clock())

    def _unsubscribed(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._pending:
                self._pending.remove(sub)
                return
            if not self.dispatcher.remove(sub):
                return
            count = self._groups.get(sub.group, 0) - 1
            if count > 0:
                self._groups[sub.group] = count
                return
            self._groups.pop(sub.group, None)
            # Whatever is no longer watched is no longer kept up to date:
            # forget it, so queries go back to reading the backend.
            for group in [sub.group, *self.repository.groups()]:
                if group is not None and not self.covers(group):
                    self.updater.forget(group)
                    self.fetcher.forget(group)
            if sub.group is None:
                self.fetcher.forget(None)

    def covers(self, group: str | None) -> bool:
        """Whether the loop keeps ``group`` (None: every group) current."""
        with self._lock:
            return self._reads(group)

    def _reads(self, group: str | None) -> bool:
        """covers() without the lock: a racing watch may change it."""
        return group in self._groups or None in self._groups

    def groups(self) -> list[str | None]:
        """The groups the loop reads (``[None]``: every group)."""
        with self._lock:
            if None in self._groups:
                return [None]
            return [g for g in sorted(self._groups, key=str)
                    if g is not None]

    # -- answers from memory -----------------------------------------------

    def members(self, group: str | None) -> list[Member]:
        with self._lock:
            return self.repository.members(
                group, self.updater.judge_time(self.clock()))

    def member(self, group: str, member_id: str) -> Member | None:
        with self._lock:
            return self.repository.member(
                group, member_id, self.updater.judge_time(self.clock()))

    def refresh(self, group: str | None) -> None:
        """Read ``group`` now, through the updater (events included).

        Raises the driver's error when the read fails.
        """
        self._cycle([group], raise_errors=True)

    # -- the loop ----------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(
                target=self._run, name='heartbeat-monitor', daemon=True)
        # listen() may wait for its subscription: not under the lock.
        if Capability.PUSH in self.driver.capabilities:
            try:
                # Pushes after a read for pushes are read together once
                # push_batch_interval is over: the driver may tell them
                # together then too.
                self._cancel_listen = self.driver.listen(
                    self._on_push, batch=self.push_batch)
            except exception.HeartbeatError as err:
                LOG.warning('Cannot listen for pushed changes (%s); the '
                            'monitor polls every %.2fs instead.', err,
                            self.poll_interval)
        self._thread.start()

    def _on_push(self, group: str) -> bool:
        """Note a pushed change and wake the loop; whether it is read.

        Called from the driver's thread.  The groups are looked at without
        the lock, which a long fold may hold: a watch or unwatch racing
        this costs at most one needless or missed batch wait.
        """
        with self._push_lock:
            self._pushed.add(group)
        self.stats.pushes += 1
        self._wake.set()
        return self._reads(group)

    def _run(self) -> None:
        next_poll = self.clock() + self.poll_interval
        while not self._stopping:
            try:
                next_poll = self._step(next_poll)
            except Exception:
                # A bug must not silently end detection for every group.
                LOG.exception('Monitor loop step failed; going on.')
                self.clock.wait(self._wake, self.poll_interval)

    def _step(self, next_poll: float) -> float:
        """Wait for the next reason to read, read, and return next_poll."""
        with self._lock:
            pending = bool(self._pending)
        if pending:
            # A first read that fails is retried on the next step; the
            # groups watched already are read meanwhile, as always.
            self._admit_pending()
            self._trim_heap()
        groups = self.groups()
        with self._lock:
            # Exact only before the next poll: a later deadline does not
            # change when the loop wakes.
            deadline = self.updater.next_deadline(groups, horizon=next_poll)
        # When every group is read: the poll, or a member's deadline.
        due_at = next_poll if deadline is None else min(next_poll, deadline)
        wake_at = due_at
        if not groups:
            # Nothing to read: sleep until watch() or stop() wakes us.
            wake_at = self.clock() + IDLE_WAIT
        with self._lock:
            if self._pending:
                # A subscriber waits for its first read: try it again.
                wake_at = min(wake_at, self.clock() + self.poll_interval)
        delay = wake_at - self.clock()
        if delay > 0:
            self.clock.wait(self._wake, delay)
        self._wake.clear()
        if self._stopping:
            return next_poll
        with self._push_lock:
            pushed, self._pushed = self._pushed, set()
        now = self.clock()
        if now < due_at:
            pushed = self._gather(pushed, now, deadline)
            now = self.clock()
        if now >= due_at:
            # Also when the wait for more pushes ran into a deadline: one
            # read of every group serves both.
            next_poll = now + self.poll_interval
            targets = groups
        else:
            targets = [g for g in pushed if self.covers(g)]
            if None in groups:
                targets = [None] if targets else []
        if pushed and targets:
            # Reads the pushed changes: the next read for pushes waits.
            self._push_read_at = now
        if targets:
            self._cycle(targets)
            self._trim_heap()
        return next_poll

    def _trim_heap(self) -> None:
        """After a big read (released by now), hand the heap back."""
        if self._big_read:
            self._big_read = False
            heap.trim()

    def _gather(self, pushed: set[str], now: float,
                deadline: float | None = None) -> set[str]:
        """The pushed groups, after waiting out the push batch interval.

        Pushes that come within push_batch_interval of the previous read
        made for pushes are read together once it has passed: a busy group
        costs a read per interval, not a read per change.  The wait ends
        at a member's deadline, which is never judged late for it.
        """
        hold = self._push_read_at + self.push_batch - now
        if deadline is not None:
            hold = min(hold, deadline - now)
        if not pushed or hold <= 0 or self._stopping:
            return pushed
        self.clock.wait(self._halt, hold)
        with self._push_lock:
            more, self._pushed = self._pushed, set()
        # The wake flag stays: a push after this swap still wakes the loop.
        return pushed | more

    def _cycle(self, groups: list[str | None],
               raise_errors: bool = False) -> None:
        with self._io_lock:
            cpu = time.thread_time()
            started = self.clock()
            try:
                reads = self.fetcher.fetch(groups)
            except Exception as err:
                if self._blind_since is None:
                    self._blind_since = started
                self._blind_last = started
                self._fetch_failed(err)
                if raise_errors:
                    raise
                seen = False
                reads = []
            else:
                self.stats.consecutive_fetch_errors = 0
                seen = True
            done = self.clock()
            with self._lock:
                if seen:
                    self._seen(started, done)
                self._apply(reads, done, started, groups)
            st = self.stats
            st.cycles += 1
            st.last_cycle_seconds = self.clock() - started
            self.cycle_seconds.observe(st.last_cycle_seconds)
            st.last_cycle_cpu = time.thread_time() - cpu
            st.total_cpu += st.last_cycle_cpu

    def _apply(self, reads: Iterable[Read], done: float, started: float,
               groups: list[str | None], quiet: bool = False) -> None:
        """Fold reads finished at ``done``; judge deadlines at ``started``.

        The read's data is at least as fresh as ``started``.  ``quiet``:
        what the reads change is told to no one (no subscriber wants it).
        """
        wall = self.wall_clock()
        events: list[Event] = []
        for group, snapshot in reads:
            if len(snapshot.reports) >= heap.AFTER_REPORTS:
                self._big_read = True
            events.extend(self.updater.apply(snapshot, done, wall, group,
                                             quiet=quiet))
        events.extend(self.updater.expire(started, wall, groups,
                                          quiet=quiet))
        if quiet:
            return
        self.stats.events += len(events)
        self._detected(events)
        self.dispatcher.dispatch(events)

    def _seen(self, started: float, done: float) -> None:
        """A read succeeded: end a blind spell with a grace.

        While reads fail or hang, members cannot be seen reporting; once
        the backend is read again, they reconnect, republish and are read
        again, which takes a few beats on a loaded host.  Members whose
        deadline had not passed when the spell ended are judged as last
        seen then: none is declared down only because the observer could
        not look, and one that stopped for good goes down one
        service_down_time after the backend was read again.  Deadlines
        that passed while the reads failed were judged then.
        """
        since = self._blind_since
        if since is None and done - started <= self.blind_after:
            return
        self._blind_since = None
        blind = done - (started if since is None else since)
        # Deadlines up to the last failed read were judged then; later
        # ones are judged as at that read (or the slow read's start) until
        # the grace ends.
        self.updater.grant_grace(
            started if since is None else self._blind_last,
            done + self.grace_seconds)
        self.stats.graces += 1
        LOG.info('Backend read again after %.1fs without a reading; no '
                 'member goes down in the next %.1fs only for not being '
                 'seen meanwhile.', blind, self.grace_seconds)

    def _detected(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, MemberDown) and not event.replay:
                entry = self.repository.entry(event.key)
                if entry is not None:
                    self.detection_seconds.observe(
                        max(0.0, event.observed_at - entry.last_change))

    def _fetch_failed(self, err: Exception) -> None:
        st = self.stats
        st.fetch_errors += 1
        st.consecutive_fetch_errors += 1
        st.last_error = str(err)
        if st.consecutive_fetch_errors in (1, 10) or (
                st.consecutive_fetch_errors % 100 == 0):
            LOG.error('Monitor read failed (%d in a row): %s. Members not '
                      'seen changing go down at their deadline; the read '
                      'is retried every %.2fs.',
                      st.consecutive_fetch_errors,
                      exception.describe(err).rstrip('.'),
                      self.poll_interval)

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop the loop and cancel every subscription; safe to call twice.

        Waits at most ``timeout`` seconds for the loop thread.  A loop
        blocked in a backend read (a stalled storage path) is abandoned:
        it is a daemon thread, it exits once the read returns, and it
        dispatches nothing more.  Returns False, and logs what was
        abandoned, when the thread did not end in time.
        """
        self._stopping = True
        self._wake.set()
        self._halt.set()
        thread = self._thread
        ended = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.0, timeout))
            if thread.is_alive():
                ended = False
                LOG.warning('Monitor loop did not stop within %.1fs (it is '
                            'probably blocked in a read of %s); abandoning '
                            'it: it ends when the read returns.', timeout,
                            ', '.join(str(g or '*') for g in self.groups())
                            or 'no group')
        if self._cancel_listen is not None:
            cancel, self._cancel_listen = self._cancel_listen, None
            try:
                cancel()
            except exception.HeartbeatError as err:
                LOG.warning('Could not stop listening for pushes: %s', err)
        with self._lock:
            waiting, self._pending = self._pending, []
        for sub in waiting:
            sub.cancel()
        self.dispatcher.close()
        return ended
