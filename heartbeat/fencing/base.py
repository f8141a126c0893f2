"""The fencer contract and the lockspace/lease bookkeeping shared by fencers.

A fencer joins the cluster's lockspace with the host's ``[heartbeat]
host_id`` (asynchronously: :meth:`Fencer.join` returns at once and
:meth:`Fencer.view` shows the progress), reports the hosts it sees, and
acquires the protected workload's exclusive resource lease *for the
workload's own process* (``pid``), so that the authority can kill that
process when the lease cannot be renewed.  :meth:`Fencer.view` answers from
memory; only join/leave/acquire/release talk to the authority.  Every one of
them answers a :class:`~heartbeat.broker.status.FencingStatus`.

The lease outlives the broker (it belongs to the workload's process), so
the holders are recorded in a file (:mod:`heartbeat.fencing.holders`) and a
starting fencer takes them back once each is proven to hold the lease
still (:meth:`Fencer.check_holder`); the others are reported as lost, with
the reason.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
import dataclasses
import threading
import time
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import status
from heartbeat import exception
from heartbeat.fencing.errors import FencingError
from heartbeat.fencing import holders as holders_mod
from heartbeat.workload import procs

LOG = logging.getLogger(__name__)

#: Lockspace states, in the order a host goes through them (the names of
#: the status contract).
LEFT = status.LOCKSPACE_LEFT
JOINING = status.LOCKSPACE_JOINING
JOINED = status.LOCKSPACE_JOINED
LEAVING = status.LOCKSPACE_LEAVING
FAILED = status.LOCKSPACE_FAILED

#: How many lost holders a view keeps.
LOST_KEPT = 10

#: Why a recorded holder no longer holds the lease (None: it does); raises
#: FencingError when the authority cannot tell now.
HolderCheck = Callable[[int], str | None]


@dataclasses.dataclass
class Holder:
    """A process holding (or having held) the resource lease."""

    pid: int
    since: float
    start_time: int | None = None
    #: Taken back from the holders file after a broker restart.
    recovered: bool = False
    lost_reason: str | None = None

    def record(self) -> holders_mod.HolderRecord:
        return holders_mod.HolderRecord(self.pid, self.start_time,
                                        self.since)


class Bookkeeping:
    """Thread-safe lockspace state and lease holders of one fencer.

    ``store`` (None: nothing is recorded) receives every change of the
    holders; a failed write is logged and shown in the view's warning,
    and the lease stays as the authority has it.
    """

    def __init__(self, store: holders_mod.HoldersFile | None = None) -> None:
        self.lock = threading.Lock()
        self.state = LEFT
        self.state_since = time.monotonic()
        self.error: str | None = None
        self.holders: dict[int, Holder] = {}
        #: Recorded holders the authority could not confirm yet.
        self.pending: dict[int, Holder] = {}
        self.lost: list[Holder] = []
        self.hosts: list[status.FencedHost] = []
        self.hosts_note: str | None = None
        self.store = store
        self.store_error: str | None = None

    def set_state(self, state: str, error: str | None = None) -> None:
        with self.lock:
            if state != self.state:
                self.state_since = time.monotonic()
            self.state = state
            self.error = error

    # -- holders -----------------------------------------------------------

    def add(self, pid: int) -> None:
        """Record that ``pid`` now holds the lease."""
        with self.lock:
            self.holders[pid] = Holder(pid, time.monotonic(),
                                       procs.start_time(pid))
            self._save()

    def remove(self, pid: int) -> None:
        """Record that ``pid`` released the lease."""
        with self.lock:
            self.holders.pop(pid, None)
            self.pending.pop(pid, None)
            self._save()

    def reap(self) -> None:
        """Move holders whose process has gone to the lost list."""
        with self.lock:
            gone = False
            for pid, holder in list(self.holders.items()):
                reason = _process_gone(holder)
                if reason is not None:
                    self._lose(holder, reason + ' (killed by the fencing '
                               'authority, or crashed)')
                    del self.holders[pid]
                    gone = True
            if gone:
                self._save()

    def recover(self, check: HolderCheck) -> None:
        """Take back the holders of the file, each checked; see module doc."""
        if self.store is None:
            return
        try:
            recorded = self.store.load()
        except FencingError as err:
            LOG.error('%s; no lease holder is taken back.', err)
            with self.lock:
                self.store_error = str(err)
            return
        current_boot = holders_mod.boot_id()
        with self.lock:
            for rec in recorded.holders:
                holder = Holder(rec.pid, rec.acquired_at, rec.start_time,
                                recovered=True)
                reason = holders_mod.process_gone(rec, recorded.boot_id,
                                                  current_boot)
                if reason is not None:
                    self._lose(holder, reason)
                else:
                    self.pending[rec.pid] = holder
            if len(self.pending) != len(recorded.holders):
                self._save()  # the lost ones leave the file
        self.confirm_pending(check)

    def confirm_pending(self, check: HolderCheck) -> None:
        """Ask ``check`` about every recorded holder not confirmed yet."""
        with self.lock:
            waiting = list(self.pending.values())
        for holder in waiting:
            try:
                reason = check(holder.pid)
            except FencingError as err:
                LOG.warning('Cannot confirm lease holder %d yet: %s',
                            holder.pid, err)
                continue
            with self.lock:
                if self.pending.pop(holder.pid, None) is None:
                    continue  # released meanwhile
                if reason is None:
                    self.holders[holder.pid] = holder
                    LOG.info('Process %d still holds the workload lease; '
                             'taken back after the broker restart.',
                             holder.pid)
                else:
                    self._lose(holder, reason)
                self._save()

    def _lose(self, holder: Holder, reason: str) -> None:
        holder.lost_reason = reason
        LOG.warning('Lease holder %d lost: %s', holder.pid, reason)
        self.lost.append(holder)
        del self.lost[:-LOST_KEPT]

    def _save(self) -> None:
        """Write the holders (confirmed or not) to the store; holds lock."""
        if self.store is None:
            return
        every = [*self.holders.values(), *self.pending.values()]
        records = [h.record() for h in every]
        try:
            self.store.save(records)
        except FencingError as err:
            if str(err) != self.store_error:
                LOG.error('%s: a restarted broker will not find these '
                          'holders.', err)
            self.store_error = str(err)
        else:
            self.store_error = None

    # -- the view ----------------------------------------------------------

    def view(self) -> status.FencingStatus:
        now = time.monotonic()
        with self.lock:
            warning = None
            if self.store_error is not None:
                warning = ('%s; a restarted broker would not find the lease '
                           'holders.' % self.store_error)
            return status.FencingStatus(
                lockspace=status.LockspaceStatus(
                    state=self.state,
                    since_s=round(now - self.state_since, 3),
                    error=self.error),
                hosts=list(self.hosts),
                hosts_note=self.hosts_note,
                lease=status.LeaseStatus(
                    held=bool(self.holders),
                    holders=[status.LeaseHolder(
                        pid=h.pid, age_s=round(max(0.0, now - h.since), 3),
                        recovered=h.recovered)
                        for h in self.holders.values()],
                    lost=[status.LostHolder(pid=h.pid, reason=h.lost_reason)
                          for h in self.lost],
                    pending=[status.LeaseHolder(
                        pid=h.pid, age_s=round(max(0.0, now - h.since), 3),
                        recovered=False)
                        for h in self.pending.values()]),
                warning=warning)


def _process_gone(holder: Holder) -> str | None:
    if not procs.pid_alive(holder.pid):
        return 'holder process %d exited while holding the lease' % holder.pid
    if (holder.start_time is not None
            and procs.start_time(holder.pid) != holder.start_time):
        return ('holder process %d exited while holding the lease and its '
                'pid was reused' % holder.pid)
    return None


class Fencer(abc.ABC):
    """Base class of fencers; see the module docstring."""

    name: ClassVar[str]
    #: False for fencers that protect nothing.
    safe: ClassVar[bool] = True

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        path = holders_mod.default_path(conf)
        self.book = Bookkeeping(
            holders_mod.HoldersFile(path) if path is not None else None)

    @property
    def host_id(self) -> int:
        host_id: int | None = self.conf.heartbeat.host_id
        if host_id is None:
            raise exception.ConfigError(
                'Fencing needs [heartbeat] host_id (1..2000), unique per '
                'host: it is the host\'s id in the lockspace.')
        return host_id

    def start(self) -> None:
        """Prepare, and take back the holders a previous broker recorded."""
        self.book.recover(self.check_holder)

    def stop(self) -> None:  # noqa: B027 (optional hook)
        """Stop pollers and leave the lockspace if no lease is held."""

    def check_holder(self, pid: int) -> str | None:
        """Why recorded holder ``pid`` lost the lease (None: it holds it).

        Called at start for each recorded holder whose process still runs;
        raises :class:`FencingError` when the authority cannot tell now
        (the holder is asked about again later).  The base class trusts the
        process check alone.
        """
        return None

    @abc.abstractmethod
    def join(self) -> status.FencingStatus:
        """Start joining the lockspace; return at once with the view."""

    @abc.abstractmethod
    def leave(self) -> status.FencingStatus:
        """Leave the lockspace; LockspaceError while a lease is held."""

    @abc.abstractmethod
    def acquire(self, pid: int) -> status.FencingStatus:
        """Acquire the resource lease for process ``pid``."""

    @abc.abstractmethod
    def release(self, pid: int) -> status.FencingStatus:
        """Release the resource lease of process ``pid``."""

    def view(self) -> status.FencingStatus:
        """Lockspace, hosts and lease state, from memory."""
        return dataclasses.replace(
            self.book.view(), fencer=self.name, safe=self.safe,
            host_id=self.conf.heartbeat.host_id)
