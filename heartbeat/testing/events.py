"""A subscriber for tests that remembers the events it is given.

Pass it as the callback of :meth:`heartbeat.servicegroup.API.watch` and
wait for what should happen::

    rec = EventRecorder()
    sg.watch('compute', rec)
    up = rec.wait('up', 'compute-1', timeout=5.0)
    assert rec.kinds('compute-2') == ['joined', 'up']
"""

from __future__ import annotations

import threading
import time

from heartbeat.model import Event


class EventRecorder:
    """A watch() callback that keeps every event, in the order received.

    ``delay`` makes it a slow subscriber: it sleeps that many seconds
    before taking each event.  ``received`` holds the wall time each event
    was taken, beside ``events``.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.events: list[Event] = []
        self.received: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._cond:
            self.events.append(event)
            self.received.append(time.time())
            self._cond.notify_all()

    def of(self, member_id: str, kind: str | None = None) -> list[Event]:
        """The events about ``member_id`` so far (only ``kind`` if given)."""
        with self._cond:
            return [e for e in self.events if e.member_id == member_id
                    and (kind is None or e.kind == kind)]

    def kinds(self, member_id: str) -> list[str]:
        """The kinds of the events about ``member_id`` so far, in order."""
        return [e.kind for e in self.of(member_id)]

    def wait(self, kind: str, member_id: str, timeout: float = 10.0,
             count: int = 1) -> Event:
        """The ``count``-th event of ``kind`` about ``member_id``.

        Waits up to ``timeout`` seconds for it; raises AssertionError, with
        every event received, when it does not come.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.of(member_id, kind)
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        'no %s #%d for %s within %.1fs; got %s'
                        % (kind, count, member_id, timeout,
                           [(e.kind, e.member_id) for e in self.events]))
                self._cond.wait(left)
