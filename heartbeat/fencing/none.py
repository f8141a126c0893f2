"""``[fencing] fencer = none``: no fencing at all.  UNSAFE.

Every operation succeeds at once and protects nothing: two hosts may run
the workload at the same time.  For demos and tests only; every use says so
loudly in the log.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import status
from heartbeat.fencing import base

LOG = logging.getLogger(__name__)

WARNING = ('[fencing] fencer = none: NOTHING prevents the protected workload '
           'from running on two hosts at once. This is UNSAFE and meant for '
           'demos and tests only; use fencer = sanlock in production.')


class NoFencer(base.Fencer):
    """A fencer that fences nothing (UNSAFE).

    It still keeps the books like a real fencer (holders recorded across a
    broker restart, checked against /proc only), so that what runs on top
    of it behaves as it would with sanlock.
    """

    name: ClassVar[str] = 'none'
    safe: ClassVar[bool] = False

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        LOG.warning(WARNING)

    def join(self) -> status.FencingStatus:
        LOG.warning('Joining no lockspace: %s', WARNING)
        self.book.set_state(status.LOCKSPACE_JOINED)
        return self.view()

    def leave(self) -> status.FencingStatus:
        self.book.set_state(status.LOCKSPACE_LEFT)
        return self.view()

    def acquire(self, pid: int) -> status.FencingStatus:
        LOG.warning('"Acquiring" the workload lease for pid %d without any '
                    'fencing: %s', pid, WARNING)
        self.book.reap()
        self.book.add(pid)
        return self.view()

    def release(self, pid: int) -> status.FencingStatus:
        self.book.remove(pid)
        return self.view()

    def view(self) -> status.FencingStatus:
        self.book.reap()
        out = super().view()
        warning = WARNING if out.warning is None else '%s %s' % (
            WARNING, out.warning)
        return dataclasses.replace(out, warning=warning)
