"""``[fencing] fencer = flock``: a kernel lock on a lease file.

ONE MACHINE ONLY: for tests, demos and containers on one node.  The
workload's resource lease is a POSIX write lock on ``[fencing] lease_path``
held by the workload's own process (see
:mod:`heartbeat.fencing.kernel_lock`): the launcher takes it before the
workload runs, and the kernel releases it when that process dies, at once
and whatever the cause.  Two workloads can therefore never run at the same
time on the machine, with no daemon to install.

The "lockspace" is the lease file on a local filesystem: joining checks
the filesystem type (a network filesystem is refused, with the reason) and
creates the file.  Acquiring verifies in ``/proc/locks`` that the process
given holds the lock (``LeaseBusy`` when another one does); the broker
never takes or drops the lock itself, so a broker restart or crash changes
nothing for a running workload.  Releasing forgets a holder that has
ended; one that still runs keeps the lock until it ends.

Considerations:

* No host is ever fenced: a host whose storage stalls keeps its workload
  (and the lock) until its agent stops it, and no other host can start it
  meanwhile.  sanlock kills the holder instead.
* There is no view of the other hosts here (``hosts`` is empty): the
  heartbeat records say who is alive.
"""

from __future__ import annotations

import os
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import status
from heartbeat.fencing import base
from heartbeat.fencing import errors
from heartbeat.fencing import kernel_lock
from heartbeat.workload import procs

LOG = logging.getLogger(__name__)

HOSTS_NOTE = ('the flock fencer sees no other host: one machine only; the '
              'heartbeat records say who is alive')


class FlockFencer(base.Fencer):
    """Fencing by a kernel lock held by the workload (one machine)."""

    name: ClassVar[str] = 'flock'

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.path = os.path.abspath(conf.fencing.lease_path)
        self.book.hosts_note = HOSTS_NOTE

    def _holder(self) -> int | None:
        try:
            return kernel_lock.holder(self.path)
        except OSError as err:
            raise errors.FencingError(
                'Cannot tell who holds the lock on %s ([fencing] '
                'lease_path): %s.' % (self.path, err.strerror or err)
            ) from err

    def check_holder(self, pid: int) -> str | None:
        holder = self._holder()
        if holder == pid:
            return None
        return ('process %d no longer holds the lock on %s (%s)'
                % (pid, self.path, 'nobody does' if holder is None
                   else 'process %d does' % holder))

    def join(self) -> status.FencingStatus:
        reason = kernel_lock.refusal(self.path)
        if reason is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o660)
            except OSError as err:
                reason = 'cannot open %s: %s' % (self.path,
                                                 err.strerror or err)
            else:
                os.close(fd)  # this process holds no lock on it to drop
        if reason is not None:
            self.book.set_state(status.LOCKSPACE_FAILED, reason)
            raise errors.LockspaceError(
                'The flock fencer refuses [fencing] lease_path: %s. Use a '
                'local filesystem, or fencer = sanlock across machines.'
                % reason)
        self.book.set_state(status.LOCKSPACE_JOINED)
        LOG.info('flock fencing on %s (one machine only).', self.path)
        return self.view()

    def leave(self) -> status.FencingStatus:
        self.book.reap()
        if self.book.holders:
            raise errors.LockspaceError(
                'Not leaving: process(es) %s hold the workload lock on %s. '
                'Stop the workload first.'
                % (', '.join(map(str, sorted(self.book.holders))),
                   self.path))
        self.book.set_state(status.LOCKSPACE_LEFT)
        return self.view()

    def acquire(self, pid: int) -> status.FencingStatus:
        if self.book.state != status.LOCKSPACE_JOINED:
            raise errors.LeaseError(
                'Cannot acquire the workload lease: the flock fencer is %s, '
                'not joined. Join it first (lockspace_join).'
                % self.book.state)
        if not procs.pid_alive(pid):
            raise errors.LeaseError('Process %d does not exist.' % pid)
        holder = self._holder()
        if holder is None:
            raise errors.LeaseError(
                'Process %d does not hold the lock on %s: start the workload '
                'through heartbeat.workload.holder --flock %s.'
                % (pid, self.path, self.path))
        if holder != pid:
            raise errors.LeaseBusy(
                'The workload lock on %s is held by process %d.'
                % (self.path, holder))
        self.book.reap()
        self.book.add(pid)
        LOG.info('Process %d holds the workload lock on %s.', pid, self.path)
        return self.view()

    def release(self, pid: int) -> status.FencingStatus:
        if procs.pid_alive(pid) and self._holder() == pid:
            LOG.warning('Process %d still runs and holds the workload lock '
                        'on %s: it keeps it until it ends.', pid, self.path)
            return self.view()
        self.book.remove(pid)
        return self.view()

    def view(self) -> status.FencingStatus:
        self.book.reap()
        return super().view()
