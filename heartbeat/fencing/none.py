"""``[fencing] fencer = none``: no fencing at all.  UNSAFE.

Every operation succeeds at once and protects nothing: two hosts may run
the workload at the same time.  For demos and tests only; every use says so
loudly in the log.
"""

from __future__ import annotations

import time
from typing import Any
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.fencing import base

LOG = logging.getLogger(__name__)

WARNING = ('[fencing] fencer = none: NOTHING prevents the protected workload '
           'from running on two hosts at once. This is UNSAFE and meant for '
           'demos and tests only; use fencer = sanlock in production.')


class NoFencer(base.Fencer):
    """A fencer that fences nothing (UNSAFE)."""

    name: ClassVar[str] = 'none'
    safe: ClassVar[bool] = False

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        LOG.warning(WARNING)

    def join(self) -> dict[str, Any]:
        LOG.warning('Joining no lockspace: %s', WARNING)
        self.book.set_state(base.JOINED)
        return self.view()

    def leave(self) -> dict[str, Any]:
        self.book.set_state(base.LEFT)
        return self.view()

    def acquire(self, pid: int) -> dict[str, Any]:
        LOG.warning('"Acquiring" the workload lease for pid %d without any '
                    'fencing: %s', pid, WARNING)
        self.book.reap()
        with self.book.lock:
            self.book.holders[pid] = base.Holder(pid, time.monotonic())
        return self.view()

    def release(self, pid: int) -> dict[str, Any]:
        with self.book.lock:
            self.book.holders.pop(pid, None)
        return self.view()

    def view(self) -> dict[str, Any]:
        self.book.reap()
        out = super().view()
        out['warning'] = WARNING
        return out
