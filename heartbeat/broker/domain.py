"""The domain monitor: is the storage domain usable right now?

Started and stopped on the agent's command.  While it runs, a probe thread
validates the storage every interval (a real read/write probe through the
storage connection) and records the measured delay; a probe that has not
returned within the timeout makes the domain invalid at once, without
waiting for it.  Never started, the domain is reported invalid.  Stopped
(for example in local maintenance) the domain is reported valid without
validation, while the broker goes on publishing and reading peers.
"""

from __future__ import annotations

from collections.abc import Callable
import enum
import threading

from oslo_log import log as logging

from heartbeat.broker.connection import ProbeResult
from heartbeat.broker import status
from heartbeat import clock as clock_mod

LOG = logging.getLogger(__name__)


class MonitorState(enum.Enum):
    NEVER_STARTED = status.DOMAIN_NEVER_STARTED
    RUNNING = status.DOMAIN_RUNNING
    STOPPED = status.DOMAIN_STOPPED


class DomainMonitor:
    """Periodic validation of the storage domain; see the module docstring.

    ``probe`` performs one validation and may block; ``interval`` and
    ``timeout`` are read before every probe (so reloads apply).
    """

    def __init__(self, probe: Callable[[], ProbeResult],
                 interval: Callable[[], float], timeout: Callable[[], float],
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC)) -> None:
        self.probe = probe
        self.interval = interval
        self.timeout = timeout
        self.clock = clock_mod.as_clock(clock)
        self.state = MonitorState.NEVER_STARTED
        self._lock = threading.Lock()
        # Notified on stop and on reschedule (a reload may change the
        # interval); shares the state lock.
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._last: ProbeResult | None = None
        self._last_at: float | None = None
        self._probe_started: float | None = None
        self._generation = 0

    def start(self) -> status.DomainStatus:
        with self._lock:
            if self.state is not MonitorState.RUNNING:
                self.state = MonitorState.RUNNING
                self._generation += 1
                self._last = None
                self._last_at = None
                self._thread = threading.Thread(
                    target=self._run, args=(self._generation,),
                    name='broker-domain-monitor', daemon=True)
                self._thread.start()
        return self.view()

    def stop(self) -> status.DomainStatus:
        with self._lock:
            if self.state is MonitorState.RUNNING:
                self.state = MonitorState.STOPPED
                self._generation += 1
                self._wake.notify_all()
        return self.view()

    def reschedule(self) -> None:
        """Re-read the interval now (after a reload)."""
        with self._lock:
            self._wake.notify_all()

    def _sleep(self, generation: int, since: float) -> None:
        """Wait until ``since`` + the current interval, or a stop."""
        with self._lock:
            while generation == self._generation:
                remaining = since + self.interval() - self.clock()
                if remaining <= 0:
                    return
                if not self.clock.wait(self._wake, remaining):
                    return

    def _run(self, generation: int) -> None:
        while True:
            with self._lock:
                if generation != self._generation:
                    return
                self._probe_started = self.clock()
            result = self.probe()
            with self._lock:
                if generation != self._generation:
                    return
                self._probe_started = None
                self._last = result
                finished = self._last_at = self.clock()
            if not result.ok:
                LOG.warning('Storage domain probe failed after %.3fs: %s',
                            result.delay, result.error)
            self._sleep(generation, finished)

    def view(self) -> status.DomainStatus:
        """What get_status says about the domain."""
        with self._lock:
            now = self.clock()
            state = self.state
            if state is MonitorState.NEVER_STARTED:
                return status.DomainStatus(
                    monitor=state.value,
                    error='domain monitor not started: the agent starts it '
                          'with start_domain_monitor')
            if state is MonitorState.STOPPED:
                return status.DomainStatus(monitor=state.value, valid=True)
            timeout = self.timeout()
            delay = age = None
            valid = False
            error: str | None = 'first probe in progress'
            if self._last is not None and self._last_at is not None:
                delay = round(self._last.delay, 6)
                age = round(now - self._last_at, 3)
                valid = self._last.ok
                error = self._last.error
            if (self._probe_started is not None
                    and now - self._probe_started > timeout):
                valid = False
                error = ('probe has not returned for %.1fs (timeout %.1fs): '
                         'the storage is stalled'
                         % (now - self._probe_started, timeout))
            return status.DomainStatus(
                monitor=state.value, validated=True, valid=valid,
                delay_s=delay, last_probe_age_s=age, error=error)
