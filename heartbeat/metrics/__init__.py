"""Prometheus metrics of heartbeat (the optional extra heartbeat[metrics]).

The daemons serve them when ``[metrics] enabled = true``; a library user
registers them in a registry of their own::

    from prometheus_client import CollectorRegistry

    import heartbeat.metrics

    registry = CollectorRegistry()
    api = heartbeat.servicegroup.API(conf)
    heartbeat.metrics.register(registry, servicegroup=api)

:func:`register` adds collectors that read heartbeat's counters when the
registry is collected (scraped): nothing is recorded for Prometheus in
between, and no metric lives in global state.  Importing this package does
not import prometheus-client; :func:`register` and :func:`serve` do.

What is exported (see :data:`heartbeat.metrics.collectors.NAMES`):

* reports published and failed per group and member, the publish latency;
* the monitor's cycles, cycle time, read errors, members per status, the
  detection latency (last seen change to Down event), and per subscriber
  the events dispatched, delivered and coalesced, the events waiting and
  the members of its first picture not described yet;
* in the broker: the writer's health and stall seconds, the lockspace
  state and the lease, and the RPC latency per method;
* in the agent: its state and score.
"""

from __future__ import annotations

from typing import Any
from typing import TYPE_CHECKING

from oslo_config import cfg

from heartbeat.conf import metrics as metrics_conf

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from heartbeat.agent.loop import AgentLoop
    from heartbeat.broker.core import Broker
    from heartbeat.metrics.endpoint import MetricsEndpoint
    from heartbeat.metrics.timing import Timings
    from heartbeat.servicegroup import API


def register(registry: CollectorRegistry, *,
             servicegroup: API | None = None, broker: Broker | None = None,
             rpc: Timings | None = None,
             agent: AgentLoop | None = None) -> list[Any]:
    """Register collectors of the given sources in ``registry``.

    ``servicegroup``: a :class:`heartbeat.servicegroup.API` (its reporters
    and monitor); ``broker`` and ``rpc``: a broker and the timings of its
    dispatcher; ``agent``: an agent loop.  Returns the collectors, for
    ``registry.unregister``.
    """
    from heartbeat.metrics import collectors

    out: list[Any] = []
    if servicegroup is not None:
        out.append(collectors.ServiceGroupCollector(servicegroup))
    if broker is not None:
        out.append(collectors.BrokerCollector(broker, rpc))
    if agent is not None:
        out.append(collectors.AgentCollector(agent))
    for collector in out:
        registry.register(collector)
    return out


def serve(conf: cfg.ConfigOpts, port: int, **sources: Any
          ) -> MetricsEndpoint | None:
    """Start a daemon's endpoint when ``[metrics] enabled``; else None.

    ``sources`` are the keyword arguments of :func:`register`.  Raises
    :class:`~heartbeat.exception.ConfigError` when prometheus-client is
    missing or the address cannot be bound.
    """
    metrics_conf.register_opts(conf)
    if not conf.metrics.enabled:
        return None
    metrics_conf.validate(conf)
    from prometheus_client import CollectorRegistry

    from heartbeat.metrics.endpoint import MetricsEndpoint

    registry = CollectorRegistry()
    register(registry, **sources)
    endpoint = MetricsEndpoint(registry, conf.metrics.host, port)
    endpoint.start()
    return endpoint
