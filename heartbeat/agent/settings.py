"""The option values the agent's pure core decides with.

:class:`AgentSettings` is a frozen copy of the [agent] and [workload]
values the state machine and the score need, in plain numbers, so that the
core never reads a ConfigOpts.  The agent service builds a fresh copy with
:func:`from_conf` at every loop; mutable options therefore apply at the next
decision.  ``AgentSettings()`` holds the option defaults (tests use it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from oslo_config import cfg


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """[agent] and [workload] values (see heartbeat.conf.agent for help)."""

    loop_interval: float = 10.0
    migrate_threshold: int = 800
    migrate_after: int = 3
    away_timeout: float = 40.0
    unexpected_down_time: float = 560.0
    bad_health_timeout: float = 300.0
    start_timeout: float = 600.0
    stop_timeout: float = 300.0
    max_start_failures: int = 3
    start_failure_expiry: float = 600.0
    broker_timeout: float = 5.0
    score_base: int = 3400
    penalty_network: int = 1600
    penalty_cpu: int = 1000
    cpu_load_low: float = 0.4
    cpu_load_high: float = 0.9
    cpu_window: float = 900.0
    penalty_memory: int = 400
    penalty_failed_start: int = 50
    #: [workload] memory_mb (0: no memory check).
    memory_mb: int = 0
    #: [heartbeat] service_down_time of the agent's own configuration; the
    #: state machine prefers the broker's value from its status and uses
    #: this one only when the broker does not say.
    service_down_time: float = 60.0


#: Fields read from another group than [agent].
_GROUPS = {'memory_mb': 'workload', 'service_down_time': 'heartbeat'}


def from_conf(conf: cfg.ConfigOpts) -> AgentSettings:
    """The current values of ``conf``.

    The [heartbeat], [agent] and [workload] options must be registered.
    """
    values: dict[str, Any] = {}
    for field in dataclasses.fields(AgentSettings):
        group = getattr(conf, _GROUPS.get(field.name, 'agent'))
        value = getattr(group, field.name)
        # The dataclass defaults say which fields are floats.
        is_float = isinstance(field.default, float)
        values[field.name] = float(value) if is_float else int(value)
    return AgentSettings(**values)
