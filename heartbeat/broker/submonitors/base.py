"""The submonitor contract."""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
from typing import Any
from typing import ClassVar

from oslo_config import cfg

from heartbeat.broker.domain import DomainMonitor


@dataclasses.dataclass(frozen=True)
class Reading:
    """One measurement: a value, whether it is fine, and details."""

    value: Any
    ok: bool
    detail: str = ''


@dataclasses.dataclass
class Context:
    """What the broker shares with its submonitors."""

    domain: DomainMonitor | None = None
    #: The workload health the agent last posted (``healthy``, ``detail``,
    #: ``age_s``), or None when it posted none.
    agent_health: Callable[[], Mapping[str, Any] | None] | None = None


class Submonitor(abc.ABC):
    """Measures one thing about the host.

    :meth:`measure` may block up to the configured timeout and may raise a
    :class:`~heartbeat.exception.HeartbeatError` (or ``OSError``); the
    runner records the error as the reading.  ``interval`` is read before
    every measurement, so reloaded options apply at once.
    """

    name: ClassVar[str]

    def __init__(self, conf: cfg.ConfigOpts, context: Context) -> None:
        self.conf = conf
        self.context = context

    @property
    def interval(self) -> float:
        value: float = self.conf.submonitors.interval
        return value

    @property
    def timeout(self) -> float:
        value: float = self.conf.submonitors.timeout
        return value

    @abc.abstractmethod
    def measure(self) -> Reading:
        """Take one reading."""
