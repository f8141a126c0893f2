"""The periodic report task of one member.

Every ``report_interval`` the reporter asks the member's state callback for
its state, builds the next :class:`~heartbeat.model.Report` and publishes it
through the driver.  The task never dies: a failing callback or publish is
logged, counted, and retried on the next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import threading
import time
from typing import Any

from oslo_log import log as logging

from heartbeat.drivers.base import Driver
from heartbeat.metrics.timing import Histogram
from heartbeat.model import Report
from heartbeat.reports import ReportSequence
from heartbeat import timer

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class State:
    """What a state callback may return besides a plain state string."""

    state: str | None = None
    score: int | None = None
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)


StateCallback = Callable[[], 'str | State | None']


def _as_state(value: str | State | None) -> State:
    if isinstance(value, State):
        return value
    if value is None or isinstance(value, str):
        return State(state=value)
    raise TypeError('state callback returned %r; return a str, None or '
                    'heartbeat.reporter.State' % (value,))


@dataclasses.dataclass
class Counters:
    """How the report task has fared so far."""

    beats: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    callback_failures: int = 0
    last_error: str | None = None
    last_success: float | None = None


class Reporter:
    """Publishes one member's reports every ``interval`` seconds."""

    def __init__(self, driver: Driver, group: str, member_id: str,
                 interval: float, state_cb: StateCallback | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.driver = driver
        self.group = group
        self.member_id = member_id
        self.interval = interval
        self.state_cb = state_cb
        self.clock = clock
        self.reports = ReportSequence(member_id, group)
        self.counters = Counters()
        #: Seconds each successful publish took.
        self.publish_seconds = Histogram()
        self._state = State()
        self._lock = threading.Lock()
        self._timer: Any = None

    def next_report(self, left: bool = False) -> Report:
        """Advance seq and build the next report from the state callback."""
        if self.state_cb is not None and not left:
            try:
                self._state = _as_state(self.state_cb())
            except Exception as err:
                self.counters.callback_failures += 1
                LOG.warning('State callback of %s/%s failed (%s); reporting '
                            'the previous state.', self.group,
                            self.member_id, err)
        return self.reports.next(self._state.state, self._state.score,
                                 self._state.payload, left=left)

    @property
    def incarnation(self) -> int:
        return self.reports.incarnation

    @property
    def seq(self) -> int:
        """The seq of the last report built."""
        return self.reports.seq

    def first_beat(self) -> None:
        """Publish the first report now; raises what the driver raises.

        What ``join()`` calls, so that an oversized payload or an unusable
        backend fails the join itself; it counts as a beat, and
        :meth:`start` with ``initial_delay=interval`` sends the next one a
        whole interval later.
        """
        with self._lock:
            self._publish_next()
            self._succeeded()

    def _publish_next(self) -> None:
        report = self.next_report()
        started = self.clock()
        self.driver.publish(report)
        self.publish_seconds.observe(self.clock() - started)

    def _succeeded(self) -> None:
        self.counters.beats += 1
        self.counters.consecutive_failures = 0
        self.counters.last_success = self.clock()

    def beat(self) -> bool:
        """Publish one report; True on success.  Never raises."""
        with self._lock:
            try:
                self._publish_next()
            except Exception as err:
                c = self.counters
                c.failures += 1
                c.consecutive_failures += 1
                c.last_error = str(err)
                LOG.error('Report %d of %s/%s failed (%d in a row): %s',
                          self.seq, self.group, self.member_id,
                          c.consecutive_failures, err)
                return False
            self._succeeded()
            return True

    def start(self, initial_delay: float = 0.0) -> None:
        """Start the timer; its first report ``initial_delay`` s from now."""
        if self._timer is not None:
            return
        self._timer = timer.fixed_interval_call(self.beat)
        self._timer.start(interval=self.interval, initial_delay=initial_delay,
                          stop_on_exception=False)

    def stop(self, leave: bool = True) -> None:
        """Stop the timer and, with ``leave``, publish a last 'left' report."""
        if self._timer is not None:
            self._timer.stop()
            self._timer.wait()
            self._timer = None
        if leave:
            with self._lock:
                try:
                    self.driver.leave(self.next_report(left=True))
                except Exception as err:
                    LOG.warning('Could not mark %s/%s as left (%s); observers '
                                'will see it go down instead.', self.group,
                                self.member_id, err)
