"""An in-memory driver for unit tests that need no server.

It keeps each member's newest report in a dict, records every read, and can
be told to fail reads (``fail = True``).  Subclasses add push or incremental
behaviour, or gate ``publish`` to simulate a stalled backend.  Functional
tests use the real drivers; this one exists for logic around them.
"""

from __future__ import annotations

import threading
from typing import Any
from typing import ClassVar

from oslo_config import cfg

from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat import exception
from heartbeat.model import Report
from heartbeat.model import Snapshot


class MemoryDriver(Driver):
    """Reports in a dict; counts reads; optionally fails them."""

    name: ClassVar[str] = 'memory'
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BATCHED_READ})

    def __init__(self, conf: cfg.ConfigOpts | None = None) -> None:
        super().__init__(conf if conf is not None else cfg.ConfigOpts())
        self.reports: dict[tuple[str, str], Report] = {}
        self.reads: list[tuple[str | None, Any]] = []
        self.fail = False
        self.lock = threading.Lock()

    @property
    def payload_limit(self) -> int:
        return 4096

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self, group: str, member_id: str) -> None:
        pass

    def publish(self, report: Report) -> None:
        with self.lock:
            self.reports[(report.group, report.member_id)] = report

    def leave(self, report: Report) -> None:
        self.publish(report)

    def snapshot(self, group: str | None = None,
                 since: Any = None) -> Snapshot:
        with self.lock:
            self.reads.append((group, since))
            if self.fail:
                raise exception.BackendError('memory backend is down')
            return Snapshot(tuple(r for r in self.reports.values()
                                  if group is None or r.group == group))

    def beat(self, member: str, group: str = 'g', state: str | None = None,
             inc: int = 1) -> None:
        """Publish the member's next report (seq + 1 within ``inc``)."""
        old = self.reports.get((group, member))
        seq = old.seq + 1 if old is not None and old.incarnation == inc else 1
        self.publish(Report(member_id=member, group=group, seq=seq,
                            incarnation=inc, state=state))
