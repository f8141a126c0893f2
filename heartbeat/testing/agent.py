"""Real HA hosts for tests: the product's simulated cluster, test-sized.

:class:`~heartbeat.cluster.hosts.HaCluster` and its pieces are product code
(``heartbeat-local-cluster`` runs them); tests start them through the names
here, and :func:`broker_with_agents` in a short temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib

from heartbeat.cluster.daemons import AGENT_CONF
from heartbeat.cluster.daemons import AgentProcess
from heartbeat.cluster.daemons import BrokerProcess
from heartbeat.cluster.daemons import Sections
from heartbeat.cluster import hosts
from heartbeat.cluster.hosts import HaCluster
from heartbeat.cluster.hosts import HaHost
from heartbeat.testing.broker import short_dir

__all__ = ['AGENT_CONF', 'AgentProcess', 'HaCluster', 'HaHost',
           'broker_with_agents']


@contextlib.contextmanager
def broker_with_agents(prefix: str, overrides: Sections | None = None,
                       start: bool = True
                       ) -> Iterator[tuple[BrokerProcess, list[AgentProcess]]]:
    """The broker and agents of :func:`hosts.broker_with_agents`.

    They run in a new short directory named with ``prefix``.
    """
    with hosts.broker_with_agents(short_dir(prefix), overrides,
                                  start) as pair:
        yield pair
