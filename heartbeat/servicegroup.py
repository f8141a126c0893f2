"""The library face of heartbeat: a nova-shaped service group API.

::

    from heartbeat import servicegroup
    sg = servicegroup.API(conf)
    sg.join('compute-1', 'compute', state_cb=lambda: 'enabled')
    sg.service_is_up('compute', 'compute-2')
    sg.get_all('compute')
    sub = sg.watch('compute', print)     # events pushed to a callback
    for event in sg.watch('compute'):    # or iterated in a script
        ...

While a group is watched, ``service_is_up``, ``get_all``, ``get_member`` and
``get_updated_time`` answer from the monitor's memory (no backend round
trip); other groups are read from the backend on every call.

No driver detail leaks through this module: drivers are chosen by
``[heartbeat] driver`` and every error is a
:class:`~heartbeat.exception.HeartbeatError`.
"""

from __future__ import annotations

from collections.abc import Callable
import datetime
import functools
import threading
import time
from types import TracebackType

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat import clock as clock_mod
from heartbeat import conf as hb_conf
from heartbeat import drivers
from heartbeat.drivers.base import Driver
from heartbeat import exception
from heartbeat.model import Member
from heartbeat.monitor.dispatcher import Callback
from heartbeat.monitor.dispatcher import Subscription
from heartbeat.monitor.pipeline import Monitor
from heartbeat.monitor.repository import Repository
from heartbeat import reporter as reporter_mod

LOG = logging.getLogger(__name__)

#: Seconds :meth:`API.close` takes at most by default.
CLOSE_TIMEOUT = 10.0


class API:
    """Join groups, report liveness and state, and ask who is up."""

    def __init__(self, conf: cfg.ConfigOpts, driver: Driver | None = None,
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC)) -> None:
        hb_conf.register_opts(conf)
        hb_conf.validate(conf)
        self.conf = conf
        self.clock = clock_mod.as_clock(clock)
        self.driver = driver if driver is not None else drivers.load(conf)
        self._started = False
        self._lock = threading.RLock()
        self._reporters: dict[tuple[str, str], reporter_mod.Reporter] = {}
        self.repository = Repository(
            conf.heartbeat.service_down_time,
            phi_threshold=conf.heartbeat.phi_threshold)
        self._monitor: Monitor | None = None

    def _ensure_started(self) -> None:
        if not self._started:
            self.driver.start()
            self._started = True

    # -- members -----------------------------------------------------------

    def join(self, member_id: str, group: str,
             state_cb: reporter_mod.StateCallback | None = None
             ) -> reporter_mod.Reporter:
        """Join ``group`` as ``member_id`` and start reporting at once.

        ``state_cb`` is called on every beat and returns the member's state:
        a string, None, or a :class:`heartbeat.reporter.State` with a score
        and a small JSON payload.
        """
        _check_name('member_id', member_id)
        _check_name('group', group)
        with self._lock:
            key = (group, member_id)
            if key in self._reporters:
                return self._reporters[key]
            self._ensure_started()
            self.driver.join(group, member_id)
            rep = reporter_mod.Reporter(
                self.driver, group, member_id,
                self.conf.heartbeat.report_interval, state_cb,
                clock=self.clock)
            # The first report goes out synchronously so that an oversized
            # payload or an unusable backend fails join() itself; the timer
            # sends the second one interval later, not at once.
            rep.first_beat()
            rep.start(initial_delay=rep.interval)
            self._reporters[key] = rep
            return rep

    def leave(self, member_id: str, group: str) -> None:
        """Stop reporting and tell observers the member left cleanly."""
        with self._lock:
            rep = self._reporters.pop((group, member_id), None)
        if rep is None:
            raise exception.NotJoined('%s has not joined group %s.'
                                      % (member_id, group))
        rep.stop(leave=True)

    def reporter(self, member_id: str, group: str) -> reporter_mod.Reporter:
        try:
            return self._reporters[(group, member_id)]
        except KeyError:
            raise exception.NotJoined('%s has not joined group %s.'
                                      % (member_id, group)) from None

    # -- observers ---------------------------------------------------------

    def watch(self, group: str | None,
              callback: Callback | None = None) -> Subscription:
        """Subscribe to the events of ``group`` (None: of every group).

        With ``callback``, a thread of the subscription calls it with every
        :class:`~heartbeat.model.Event` in order; without, iterate over the
        returned subscription.  It returns at once, without I/O: the fetch
        loop reads the group and hands the subscriber the current picture
        (a MemberJoined, then MemberUp or MemberDown, per known member,
        with ``replay=True``), described as the subscriber takes it so
        that no more than ``queue_size`` events ever wait, then every
        change (a Down or Left first, however much of the picture is
        left; a member's own events in order).  While the
        backend cannot be read, the subscriber waits and the read is
        retried every poll interval (``monitor.stats``).  One fetch loop
        per API serves every watched group and subscriber; a slow
        subscriber delays only itself.  ``subscription.cancel()`` stops it.
        """
        if group is not None:
            _check_name('group', group)
        with self._lock:
            self._ensure_started()
            if self._monitor is None:
                self._monitor = Monitor(self.driver, self.conf,
                                        clock=self.clock)
            monitor = self._monitor
        return monitor.watch(group, callback)

    @property
    def monitor(self) -> Monitor | None:
        """The monitor behind :meth:`watch`, once something is watched."""
        return self._monitor

    def _watching(self, group: str | None) -> Monitor | None:
        monitor = self._monitor
        if monitor is not None and monitor.covers(group):
            return monitor
        return None

    def refresh(self, group: str | None = None) -> None:
        """Read ``group`` (None: every group) once into the repository."""
        monitor = self._watching(group)
        if monitor is not None:
            monitor.refresh(group)
            return
        with self._lock:
            self._ensure_started()
            snapshot = self.driver.snapshot(group)
            self.repository.apply(snapshot, self.clock(), group)

    def get_all(self, group: str | None) -> list[Member]:
        """Every member of ``group`` (None: of every group).

        Answered from memory while the group is watched, otherwise read
        from the backend now.
        """
        monitor = self._watching(group)
        if monitor is not None:
            return monitor.members(group)
        self.refresh(group)
        return self.repository.members(group, self.clock())

    def get_member(self, group: str, member_id: str) -> Member | None:
        monitor = self._watching(group)
        if monitor is not None:
            return monitor.member(group, member_id)
        self.refresh(group)
        return self.repository.member(group, member_id, self.clock())

    def service_is_up(self, group: str, member_id: str) -> bool:
        """Whether ``member_id`` of ``group`` is alive.

        A member this observer has just started to watch counts as alive
        until it has been seen unchanged for service_down_time.
        """
        member = self.get_member(group, member_id)
        return member is not None and member.up

    def get_updated_time(self, group: str,
                         member_id: str) -> datetime.datetime | None:
        """When this observer last saw the member's report change (UTC)."""
        member = self.get_member(group, member_id)
        if member is None:
            return None
        return datetime.datetime.fromtimestamp(member.last_change_wall,
                                               tz=datetime.timezone.utc)

    # -- lifecycle ---------------------------------------------------------

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Stop watching, leave every joined group, disconnect the driver.

        Returns within about ``timeout`` seconds even while the backend
        hangs (a stalled storage path): the monitor loop, a reporter's
        last 'left' write and the driver's disconnect each get what is
        left of the bound, and whatever does not finish in time is
        abandoned in a daemon thread and logged by name.  Returns True
        when everything finished, False when something was abandoned.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            monitor, self._monitor = self._monitor, None
            reporters = list(self._reporters.values())
            self._reporters.clear()
            started, self._started = self._started, False
        finished = True
        if monitor is not None:
            finished &= monitor.stop(timeout=_left(deadline))
        for rep in reporters:
            finished &= _bounded(
                'leaving %s/%s' % (rep.group, rep.member_id),
                functools.partial(rep.stop, leave=True), deadline)
        if started:
            finished &= _bounded('disconnecting the driver',
                                 self.driver.stop, deadline)
        return finished

    def __enter__(self) -> API:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _bounded(what: str, func: Callable[[], object], deadline: float) -> bool:
    """Run ``func`` in a daemon thread until ``deadline``; False if late.

    A late ``func`` keeps running in its thread (a blocked read cannot be
    interrupted) but the caller goes on; the abandoned step is logged.
    """
    def target() -> None:
        try:
            func()
        except Exception:
            LOG.exception('Shutdown step failed: %s.', what)

    thread = threading.Thread(target=target, daemon=True,
                              name='heartbeat-close')
    thread.start()
    thread.join(timeout=_left(deadline))
    if thread.is_alive():
        LOG.warning('Shutdown step not finished in time, abandoned: %s '
                    '(the backend is probably hung).', what)
        return False
    return True


def _check_name(what: str, value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise exception.ConfigError(
            '%s must be a non-empty string of at most 255 characters, got %r.'
            % (what, value))
