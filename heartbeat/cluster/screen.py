"""The status screen of a simulated cluster: one row per host (pure).

Columns: the host, its agent's state and score, maintenance, whether its
broker holds the workload lease, whether the workload answers from it, and
the reason of its agent's last transition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from heartbeat.broker.status import BrokerStatus

HEADER = ('host', 'agent', 'score', 'maint', 'lease', 'workload',
          'last transition')

#: Longest reason shown (the whole one is in the agent's log).
REASON_WIDTH = 60


def host_row(name: str, status: BrokerStatus | None,
             serving: str | None) -> list[str]:
    """One host's row; ``status`` None: its broker does not answer."""
    here = 'serving' if serving == name else '-'
    if status is None:
        return [name, 'no broker', '-', '-', '-', here, '-']
    own = status.own
    agent: dict[str, Any] = own.payload.get('agent') or {}
    history = agent.get('history') or []
    last = history[0] if history and isinstance(history[0], dict) else {}
    reason = ('%s -> %s: %s' % (last.get('old'), last.get('new'),
                                last.get('reason', ''))
              if last else '-')
    if len(reason) > REASON_WIDTH:
        reason = reason[:REASON_WIDTH - 3] + '...'
    return [name, own.state or '-',
            '-' if own.score is None else str(own.score),
            'local' if own.local_maintenance else '-',
            'held' if status.fencing.lease.held else '-', here, reason]


def rows(hosts: Sequence[tuple[str, BrokerStatus | None]],
         serving: str | None) -> list[Sequence[str]]:
    """The table: the header, then a row per (name, status)."""
    return [HEADER, *(host_row(name, status, serving)
                      for name, status in hosts)]
