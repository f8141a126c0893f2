"""Many members beating from one process, each on its own jittered clock.

For scale and fault tests that need a thousand members without a thousand
processes: one driver with ``join_many`` and ``publish_many`` (the redis
driver) carries every member's beats, one pipelined round trip per batch::

    driver = RedisDriver(conf)
    with MemberFleet(driver, 'compute', count=1000, report_interval=0.5,
                     jitter=0.2) as fleet:
        ...
        fleet.state = 'during'   # every later beat reports it
        ...

Each member beats every ``report_interval`` times a factor drawn anew for
every beat within ``1 +- jitter``.  A batch the backend refuses (an outage,
a paused server) is retried at once with fresh seqs until it goes through:
what a member's own reporter does on its next beat.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from heartbeat import exception
from heartbeat.model import Report
from heartbeat.testing import fixture

#: Members published in one round trip at the most.
BATCH = 1000
#: Seconds between two attempts while the backend refuses beats.
RETRY = 0.02


class MemberFleet(fixture.Fixture):
    """``count`` members of ``group`` published through one ``driver``."""

    def __init__(self, driver: Any, group: str, count: int,
                 report_interval: float, jitter: float = 0.2,
                 seed: int = 1, prefix: str = 'member') -> None:
        self.driver = driver
        self.group = group
        self.report_interval = report_interval
        self.jitter = jitter
        self.ids = ['%s-%05d' % (prefix, i) for i in range(count)]
        #: What every beat from now on reports as the members' state.
        self.state = 'up'
        #: Beats the backend took, and batches it refused.
        self.beats = 0
        self.failed_batches = 0
        self._random = random.Random(seed)
        self._incarnation = {m: self._random.randrange(1, 2 ** 62)
                             for m in self.ids}
        self._seq = dict.fromkeys(self.ids, 0)
        self._due: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='fleet',
                                        daemon=True)

    def _report(self, member_id: str) -> Report:
        self._seq[member_id] += 1
        return Report(member_id=member_id, group=self.group,
                      seq=self._seq[member_id],
                      incarnation=self._incarnation[member_id],
                      state=self.state, written_at=time.time())

    def _next(self, now: float) -> float:
        spread = self._random.uniform(1 - self.jitter, 1 + self.jitter)
        return now + self.report_interval * spread

    def start(self) -> None:
        """Join and publish every member once, then beat in a thread."""
        self.driver.start()
        for first in range(0, len(self.ids), BATCH):
            batch = self.ids[first:first + BATCH]
            self.driver.join_many(self.group, batch)
            self.driver.publish_many([self._report(m) for m in batch])
        now = time.monotonic()
        # Spread the first beats over one interval, as members started at
        # different times would be.
        self._due = {m: now + self._random.uniform(0, self.report_interval)
                     for m in self.ids}
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10.0)
        self.driver.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            due = [m for m, when in self._due.items() if when <= now]
            for first in range(0, len(due), BATCH):
                self._beat(due[first:first + BATCH])
            upcoming = min(self._due.values())
            self._stop.wait(max(0.0, min(0.05, upcoming - time.monotonic())))

    def _beat(self, batch: list[str]) -> None:
        while not self._stop.is_set():
            try:
                self.driver.publish_many([self._report(m) for m in batch])
            except exception.BackendError:
                self.failed_batches += 1
                self._stop.wait(RETRY)
                continue
            self.beats += len(batch)
            now = time.monotonic()
            for member_id in batch:
                self._due[member_id] = self._next(now)
            return
