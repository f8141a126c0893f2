"""Deliver events to subscribers; a slow subscriber never blocks anyone.

Every subscription owns an :class:`~heartbeat.monitor.eventqueue.EventQueue`
(bounded, coalescing) and, when it has a callback, one delivery thread that
calls it.  :meth:`Dispatcher.dispatch` only appends to queues, so the fetch
loop that calls it never waits for a subscriber, and a subscriber that is
slow or raises delays nobody but itself.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
import threading
import time
from types import TracebackType

from oslo_log import log as logging

from heartbeat.model import Event
from heartbeat.monitor.eventqueue import EventQueue
from heartbeat.monitor.eventqueue import QueueCounters
from heartbeat.monitor.picture import Picture

LOG = logging.getLogger(__name__)

Callback = Callable[[Event], None]


class Subscription:
    """A subscriber to the events of one group (None: of every group).

    With a callback, a thread of its own calls it with each event in order.
    Without one, iterate over the subscription (the iteration ends when it
    is cancelled) or call :meth:`get`.  :meth:`cancel` stops delivery.
    """

    def __init__(self, group: str | None, callback: Callback | None,
                 maxsize: int, slow_after: float = 1.0,
                 on_cancel: Callable[[Subscription], None] | None = None
                 ) -> None:
        self.group = group
        self.callback = callback
        self.slow_after = slow_after
        self.queue = EventQueue(maxsize)
        #: Times the callback raised.
        self.callback_errors = 0
        #: Times the callback took longer than ``slow_after`` seconds.
        self.slow_callbacks = 0
        self._on_cancel = on_cancel
        self._thread: threading.Thread | None = None
        self._cancelled = False

    @property
    def active(self) -> bool:
        return not self._cancelled

    @property
    def counters(self) -> QueueCounters:
        return self.queue.counters

    def wants(self, event: Event) -> bool:
        return self.group is None or event.group == self.group

    def put(self, event: Event) -> None:
        self.queue.put(event)

    def start(self) -> None:
        """Start the delivery thread (callback subscriptions only)."""
        if self.callback is None or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._deliver, daemon=True,
            name='heartbeat-subscriber-%s' % (self.group or '*'))
        self._thread.start()

    def _deliver(self) -> None:
        callback = self.callback
        assert callback is not None
        while True:
            event = self.queue.get()
            if event is None:
                return
            started = time.monotonic()
            try:
                callback(event)
            except Exception:
                self.callback_errors += 1
                LOG.exception('Subscriber of group %s failed on %s event of '
                              '%s; delivery goes on with the next event.',
                              self.group or '*', event.kind, event.member_id)
            took = time.monotonic() - started
            if took > self.slow_after:
                self.slow_callbacks += 1
                LOG.warning('Subscriber of group %s took %.1fs for one '
                            'event; it delays only itself, but its events '
                            'get coalesced when %d are waiting.',
                            self.group or '*', took, self.queue.maxsize)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` or once cancelled."""
        if self.callback is not None:
            raise TypeError('This subscription delivers to its callback; '
                            'subscribe without a callback to iterate.')
        return self.queue.get(timeout)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    def cancel(self) -> None:
        """Stop delivery; events not yet delivered are dropped."""
        if self._cancelled:
            return
        self._cancelled = True
        if self._on_cancel is not None:
            self._on_cancel(self)
        self.queue.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # Bounded: a callback that never returns must not hang the
            # caller's shutdown; its daemon thread is left behind.
            bound = self.slow_after + 5.0
            thread.join(timeout=bound)
            if thread.is_alive():
                LOG.warning('Subscriber of group %s is still in its '
                            'callback after %.1fs; abandoning its delivery '
                            'thread.', self.group or '*', bound)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cancel()


class Dispatcher:
    """Fan events out to the subscriptions that want them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []

    @property
    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs)

    def add(self, sub: Subscription, picture: Picture | None = None) -> None:
        """Register ``sub``; it is shown ``picture`` first.

        The caller holds the picture's lock, which orders its description
        with every :meth:`dispatch`, so the subscriber sees neither a gap
        nor a duplicate.
        """
        if picture is not None:
            sub.queue.show(picture)
        with self._lock:
            self._subs.append(sub)
        sub.start()

    def remove(self, sub: Subscription) -> bool:
        with self._lock:
            try:
                self._subs.remove(sub)
            except ValueError:
                return False
            return True

    def dispatch(self, events: Iterable[Event]) -> None:
        """Queue ``events`` for every interested subscriber; never blocks."""
        with self._lock:
            subs = list(self._subs)
        if not subs:
            return
        for event in events:
            for sub in subs:
                if sub.wants(event):
                    sub.put(event)

    def close(self) -> None:
        """Cancel every subscription."""
        for sub in self.subscriptions:
            sub.cancel()
