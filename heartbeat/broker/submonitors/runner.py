"""Runs every enabled submonitor in its own thread and keeps the readings."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import threading
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import status
from heartbeat.broker.submonitors.base import Context
from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor
from heartbeat import clock as clock_mod
from heartbeat import exception
from heartbeat import plugins

LOG = logging.getLogger(__name__)

NAMESPACE = 'heartbeat.submonitors'


def load(conf: cfg.ConfigOpts, names: Sequence[str],
         context: Context) -> list[Submonitor]:
    """Instantiate the submonitors ``names``; ConfigError for unknown ones."""
    return [plugins.plugin_class(NAMESPACE, name, '[submonitors] enabled')(
        conf, context) for name in names]


class SubmonitorRunner:
    """One thread per submonitor; readings answered from memory."""

    def __init__(self, monitors: Sequence[Submonitor],
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC)) -> None:
        self.monitors = list(monitors)
        self.clock = clock_mod.as_clock(clock)
        self._lock = threading.Lock()
        self._readings: dict[str, tuple[Reading | None, str | None,
                                        float]] = {}
        self._busy: dict[str, float] = {}
        self._stop = threading.Event()
        # Wakes sleeping submonitors so that a changed interval applies at
        # once instead of after the interval that was configured before.
        self._pace = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        for mon in self.monitors:
            thread = threading.Thread(target=self._run, args=(mon,),
                                      name='submonitor-%s' % mon.name,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.reschedule()
        deadline = self.clock() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - self.clock()))
        self._threads = []

    def reschedule(self) -> None:
        """Re-read every submonitor's interval now (after a reload)."""
        with self._pace:
            self._pace.notify_all()

    def _sleep(self, mon: Submonitor, since: float) -> None:
        """Wait until ``since`` + the submonitor's current interval."""
        with self._pace:
            while not self._stop.is_set():
                remaining = since + mon.interval - self.clock()
                if remaining <= 0:
                    return
                if not self.clock.wait(self._pace, remaining):
                    return

    def _run(self, mon: Submonitor) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._busy[mon.name] = self.clock()
            reading: Reading | None = None
            error = None
            try:
                reading = mon.measure()
            except (exception.HeartbeatError, OSError, ValueError) as err:
                error = str(err)
            except Exception as err:
                # A plugin bug costs its own readings, not the broker.
                LOG.exception('Submonitor %s failed', mon.name)
                error = '%s: %s' % (type(err).__name__, err)
            with self._lock:
                self._busy.pop(mon.name, None)
                finished = self.clock()
                self._readings[mon.name] = (reading, error, finished)
            self._sleep(mon, finished)

    def view(self) -> dict[str, status.SubmonitorReading]:
        """Every submonitor's newest reading, with its age."""
        now = self.clock()
        out: dict[str, status.SubmonitorReading] = {}
        with self._lock:
            for mon in self.monitors:
                out[mon.name] = self._reading(mon, now)
        return out

    def _reading(self, mon: Submonitor,
                 now: float) -> status.SubmonitorReading:
        value: Any = None
        ok: bool | None = None
        detail = ''
        error: str | None = None
        age: float | None = None
        got = self._readings.get(mon.name)
        if got is not None:
            reading, error, at = got
            age = round(now - at, 3)
            if reading is not None:
                value, ok, detail = reading.value, reading.ok, reading.detail
            else:
                ok = False
        busy = self._busy.get(mon.name)
        if busy is not None and now - busy > mon.timeout * 2:
            ok = False
            error = 'measurement running for %.1fs' % (now - busy)
        return status.SubmonitorReading(value=value, ok=ok, detail=detail,
                                        error=error, age_s=age,
                                        interval_s=mon.interval)
