"""Entry point for oslo-config-generator (``oslo.config.opts``)."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import agent
from heartbeat.conf import base
from heartbeat.conf import broker
from heartbeat.conf import fencing
from heartbeat.conf import metrics
from heartbeat.conf import monitor
from heartbeat.conf import redis
from heartbeat.conf import storage
from heartbeat.conf import submonitors
from heartbeat.conf import tooz
from heartbeat.conf import workload

AREAS = (base, storage, monitor, redis, tooz, broker, fencing, submonitors,
         agent, workload, metrics)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Every option of heartbeat, library and daemons, by group."""
    out: list[tuple[cfg.OptGroup, list[cfg.Opt]]] = []
    for area in AREAS:
        out.extend(area.list_opts())
    return out
