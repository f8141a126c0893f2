"""``[fencing] fencer = sanlock``: the sanlock daemon is the authority.

The broker joins the lockspace ``[fencing] lockspace_name`` in
``lease_path`` with ``[heartbeat] host_id`` (a delta lease that sanlock
renews every 2 x io_timeout) and acquires the exclusive resource lease
``resource_name`` for the workload's own process.  That process registers
with the daemon itself (see :mod:`heartbeat.workload.holder`), so when the
host cannot renew its delta lease, sanlock kills exactly the workload (and,
with a watchdog, resets the host); another host can acquire the lease only
after this one is provably gone.

Considerations:

* The binding (Debian's python3-sanlock) is loaded on first use; the
  process talks to the daemon of ``[fencing] sanlock_run_dir``.
* Joining is asynchronous: :meth:`SanlockFencer.join` returns at once and a
  poller follows the progress, reports the hosts sanlock sees and notices
  lease holders that died.
* Leaving with a lease held is refused (sanlock would kill the workload):
  stop the workload and release the lease first.
* A broker restarted under a running workload takes its holders back from
  the holders file only once sanlock itself lists the lease for the pid
  (``inquire``); while the daemon cannot answer they stay unconfirmed and
  the poller asks again.
* Timeline with io_timeout T: renewals every 2T, holders killed after 8T
  without renewal, peers see a failed host as dead after 8T + 60 s.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from types import ModuleType
from typing import Any
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import status
from heartbeat.fencing import base
from heartbeat.fencing import binding
from heartbeat.fencing import errors
from heartbeat.workload import procs

LOG = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
ALIGN = 1024 * 1024
#: sanlock's answer for a leader record with a bad magic number.
SANLK_LEADER_MAGIC = -223

#: States in which this host is, or is getting, in the lockspace.
IN_LOCKSPACE = (status.LOCKSPACE_JOINING, status.LOCKSPACE_JOINED)

HOST_FLAGS = (('HOST_FREE', 'free'), ('HOST_LIVE', 'live'),
              ('HOST_FAIL', 'fail'), ('HOST_DEAD', 'dead'),
              ('HOST_UNKNOWN', 'unknown'))


def _errno(err: BaseException) -> int | None:
    code = getattr(err, 'errno', None)
    if isinstance(code, int):
        return code
    args: tuple[Any, ...] = tuple(getattr(err, 'args', ()))
    if args and isinstance(args[0], int):
        return int(args[0])
    return None


def describe(err: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(err, 'args', ()))
    if len(args) >= 3:
        return '%s (%s, errno %s)' % (args[1], args[2], args[0])
    return str(err)


class Lockspace:
    """Names and places of the lockspace and the resource lease."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        opts = conf.fencing
        self.name = opts.lockspace_name.encode('utf-8')
        self.resource = opts.resource_name.encode('utf-8')
        self.path: str = opts.lease_path
        self.offset: int = opts.lockspace_offset
        self.resource_offset: int = opts.resource_offset
        self.io_timeout: int = opts.io_timeout
        self.run_dir: str | None = opts.sanlock_run_dir

    @property
    def disks(self) -> list[tuple[str, int]]:
        return [(self.path, self.resource_offset)]


class SanlockFencer(base.Fencer):
    """Fencing through the local sanlock daemon."""

    name: ClassVar[str] = 'sanlock'

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.space = Lockspace(conf)
        self._sanlock: ModuleType | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._join_started = 0.0

    @property
    def sanlock(self) -> ModuleType:
        if self._sanlock is None:
            self._sanlock = binding.load(self.space.run_dir)
        return self._sanlock

    def start(self) -> None:
        _ = self.sanlock
        super().start()
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll,
                                        name='sanlock-poller', daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5.0)
            self._poller = None
        if self.book.state in IN_LOCKSPACE:
            try:
                self.leave()
            except errors.FencingError as err:
                LOG.warning('Staying in lockspace %s: %s',
                            self.space.name.decode(), err)

    # -- lockspace ---------------------------------------------------------

    def check_holder(self, pid: int) -> str | None:
        sl = self.sanlock
        try:
            resources = sl.inquire(pid=pid)
        except sl.SanlockException as err:
            if _errno(err) == errno.ESRCH:
                return ('process %d is no longer registered with sanlock'
                        % pid)
            raise errors.FencingError(
                'sanlock cannot say what process %d holds: %s'
                % (pid, describe(err))) from err
        sp = self.space
        for res in resources:
            if (res.get('lockspace') == sp.name
                    and res.get('resource') == sp.resource):
                return None
        return ('sanlock lists no workload lease for process %d (released '
                'or lost while the broker was down)' % pid)

    def join(self) -> status.FencingStatus:
        if self.book.state in IN_LOCKSPACE:
            return self.view()
        host_id = self.host_id
        sp = self.space
        try:
            self.sanlock.add_lockspace(sp.name, host_id, sp.path, sp.offset,
                                       iotimeout=sp.io_timeout, wait=False)
        except self.sanlock.SanlockException as err:
            if _errno(err) != errno.EEXIST:
                self.book.set_state(status.LOCKSPACE_FAILED, describe(err))
                raise errors.LockspaceError(
                    'Cannot join lockspace %s with host_id %d on %s: %s. '
                    'Is it initialised ("heartbeat-storage sanlock-init") '
                    'and is the sanlock daemon running?'
                    % (sp.name.decode(), host_id, sp.path,
                       describe(err))) from err
            LOG.info('Lockspace %s already joined by this host.',
                     sp.name.decode())
        self._join_started = time.monotonic()
        self.book.set_state(status.LOCKSPACE_JOINING)
        LOG.info('Joining lockspace %s as host_id %d (io_timeout %ds).',
                 sp.name.decode(), host_id, sp.io_timeout)
        return self.view()

    def leave(self) -> status.FencingStatus:
        self.book.reap()
        if self.book.holders or self.book.pending:
            raise errors.LockspaceError(
                'Not leaving lockspace %s: process(es) %s hold the workload '
                'lease and sanlock would kill them. Stop the workload and '
                'release the lease first.'
                % (self.space.name.decode(),
                   ', '.join(map(str, sorted({*self.book.holders,
                                              *self.book.pending})))))
        if self.book.state == status.LOCKSPACE_LEFT:
            return self.view()
        sp = self.space
        self.book.set_state(status.LOCKSPACE_LEAVING)
        try:
            self.sanlock.rem_lockspace(sp.name, self.host_id, sp.path,
                                       sp.offset, wait=True, unused=True)
        except self.sanlock.SanlockException as err:
            code = _errno(err)
            if code == errno.ENOENT:
                self.book.set_state(status.LOCKSPACE_LEFT)
                return self.view()
            self.book.set_state(status.LOCKSPACE_JOINED, describe(err))
            raise errors.LockspaceError(
                'Cannot leave lockspace %s: %s (EBUSY means a resource '
                'lease is still held).'
                % (sp.name.decode(), describe(err))) from err
        self.book.set_state(status.LOCKSPACE_LEFT)
        LOG.info('Left lockspace %s.', sp.name.decode())
        return self.view()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception:
                # The poller only observes; it must survive anything.
                LOG.exception('sanlock poller failed; retrying')
            self._stop.wait(POLL_INTERVAL)

    def _poll_once(self) -> None:
        sl = self.sanlock
        sp = self.space
        state = self.book.state
        if state in IN_LOCKSPACE:
            try:
                inq = sl.inq_lockspace(sp.name, self.host_id, sp.path,
                                       sp.offset)
            except sl.SanlockException as err:
                inq = False
                LOG.debug('inq_lockspace failed: %s', describe(err))
            if inq is True and state == status.LOCKSPACE_JOINING:
                LOG.info('Joined lockspace %s as host_id %d in %.1fs.',
                         sp.name.decode(), self.host_id,
                         time.monotonic() - self._join_started)
                self.book.set_state(status.LOCKSPACE_JOINED)
            elif inq is False:
                self.book.set_state(
                    status.LOCKSPACE_FAILED, 'sanlock no longer holds '
                    'host_id %d in lockspace %s (lost or removed)'
                    % (self.host_id, sp.name.decode()))
            elif (inq is None and state == status.LOCKSPACE_JOINING
                  and time.monotonic() - self._join_started
                  > self.conf.fencing.join_timeout):
                self.book.set_state(
                    status.LOCKSPACE_FAILED, 'join did not complete within '
                    '[fencing] join_timeout (%.0fs)'
                    % self.conf.fencing.join_timeout)
        self._poll_hosts()
        self.book.reap()
        if self.book.pending:
            self.book.confirm_pending(self.check_holder)

    def _poll_hosts(self) -> None:
        sl = self.sanlock
        if self.book.state != status.LOCKSPACE_JOINED:
            with self.book.lock:
                self.book.hosts = []
                self.book.hosts_note = 'not joined'
            return
        names = {getattr(sl, const): label for const, label in HOST_FLAGS
                 if hasattr(sl, const)}
        try:
            hosts = sl.get_hosts(self.space.name)
        except sl.SanlockException as err:
            with self.book.lock:
                self.book.hosts_note = ('not known yet' if _errno(err) ==
                                        errno.EAGAIN else describe(err))
            return
        rows = [status.FencedHost(
            host_id=h['host_id'], generation=h['generation'],
            timestamp=h['timestamp'],
            state=names.get(h['flags'] & 0xF, 'unknown')) for h in hosts]
        with self.book.lock:
            self.book.hosts = rows
            self.book.hosts_note = None

    # -- the resource lease ------------------------------------------------

    def acquire(self, pid: int) -> status.FencingStatus:
        if self.book.state != status.LOCKSPACE_JOINED:
            raise errors.LeaseError(
                'Cannot acquire the workload lease: lockspace %s is %s, not '
                'joined. Join it first (lockspace_join) and wait for it.'
                % (self.space.name.decode(), self.book.state))
        if not procs.pid_alive(pid):
            raise errors.LeaseError('Process %d does not exist.' % pid)
        sp = self.space
        try:
            self.sanlock.acquire(sp.name, sp.resource, sp.disks, pid=pid)
        except self.sanlock.SanlockException as err:
            code = _errno(err)
            if code in (errno.EAGAIN, errno.EBUSY) or (
                    code is not None and abs(code) in range(240, 250)):
                raise errors.LeaseBusy(
                    'The workload lease %s is held by another host: %s.'
                    % (sp.resource.decode(), describe(err))) from err
            if code == errno.EEXIST:
                raise errors.LeaseError(
                    'Process %d already holds the workload lease %s.'
                    % (pid, sp.resource.decode())) from err
            raise errors.LeaseError(
                'Cannot acquire the workload lease %s for pid %d: %s. The '
                'process must be registered with sanlock (start it through '
                'heartbeat.workload.holder).'
                % (sp.resource.decode(), pid, describe(err))) from err
        self.book.add(pid)
        LOG.info('Acquired workload lease %s for pid %d.',
                 sp.resource.decode(), pid)
        return self.view()

    def release(self, pid: int) -> status.FencingStatus:
        sp = self.space
        try:
            self.sanlock.release(sp.name, sp.resource, sp.disks, pid=pid)
        except self.sanlock.SanlockException as err:
            if procs.pid_alive(pid) and _errno(err) != errno.ENOENT:
                raise errors.LeaseError(
                    'Cannot release the workload lease of pid %d: %s.'
                    % (pid, describe(err))) from err
        self.book.remove(pid)
        LOG.info('Released workload lease %s of pid %d.',
                 sp.resource.decode(), pid)
        return self.view()


def lockspace_missing(err: BaseException) -> bool:
    """Whether a read_lockspace error says "no lockspace there".

    Only sanlock's bad-magic answer (SANLK_LEADER_MAGIC, "Lease does not
    exist on storage", what zeros or foreign data read as) means that; an
    I/O error, a timeout, a missing device or any other answer means the
    lockspace could not be read, which says nothing about whether one is
    there.
    """
    return _errno(err) == SANLK_LEADER_MAGIC


def _check_uninitialised(sl: ModuleType, sp: Lockspace) -> None:
    """Refuse unless sanlock reads no lockspace at all (fails closed)."""
    try:
        sl.read_lockspace(sp.path, sp.offset)
    except sl.SanlockException as err:
        if lockspace_missing(err):
            return
        raise errors.FencingError(
            'Cannot tell whether a lockspace is initialised in %s:%d: %s; '
            'refusing (re-initialising one in use makes every host lose its '
            'leases). Fix the storage or the sanlock daemon, or pass --force '
            'once every host is stopped.'
            % (sp.path, sp.offset, describe(err))) from err
    raise errors.FencingError(
        'Lockspace already initialised in %s; re-initialising it while '
        'hosts use it makes them lose their leases. Stop every host first '
        'and pass --force.' % sp.path)


def init_areas(conf: cfg.ConfigOpts, force: bool = False) -> str:
    """Write the lockspace and the resource lease into [fencing] lease_path.

    Talks to the local sanlock daemon, which does the I/O.  Unless
    ``force``, refuses (FencingError) to overwrite an initialised
    lockspace (every host using it would lose its leases) and, failing
    closed, whenever reading it fails for any reason other than
    :func:`lockspace_missing`.
    """
    sp = Lockspace(conf)
    sl = binding.load(sp.run_dir)
    need = max(sp.offset, sp.resource_offset) + ALIGN
    if sp.offset % ALIGN or sp.resource_offset % ALIGN:
        raise errors.FencingError(
            '[fencing] lockspace_offset and resource_offset must be '
            'multiples of 1 MiB.')
    if abs(sp.offset - sp.resource_offset) < ALIGN:
        raise errors.FencingError(
            '[fencing] lockspace_offset and resource_offset overlap; put '
            'them at least 1 MiB apart.')
    if not os.path.exists(sp.path):
        parent = os.path.dirname(os.path.abspath(sp.path))
        if not os.path.isdir(parent):
            raise errors.FencingError(
                'Cannot create %s: directory %s does not exist.'
                % (sp.path, parent))
        with open(sp.path, 'wb') as f:
            f.truncate(need)
    elif os.path.isfile(sp.path) and os.path.getsize(sp.path) < need:
        os.truncate(sp.path, need)
    if not force:
        _check_uninitialised(sl, sp)
    try:
        sl.write_lockspace(sp.name, sp.path, sp.offset,
                           iotimeout=sp.io_timeout)
        sl.write_resource(sp.name, sp.resource, sp.disks)
    except sl.SanlockException as err:
        raise errors.FencingError(
            'Cannot initialise sanlock areas in %s: %s. Is the sanlock '
            'daemon running (and [fencing] sanlock_run_dir right)?'
            % (sp.path, describe(err))) from err
    return ('Initialised lockspace %s at %s:%d (io_timeout %ds) and '
            'resource %s at %s:%d.'
            % (sp.name.decode(), sp.path, sp.offset, sp.io_timeout,
               sp.resource.decode(), sp.path, sp.resource_offset))
