"""Fencing authorities: who may run the protected workload.

Fencers are plugins of the ``heartbeat.fencers`` entry point, chosen by
``[fencing] fencer``: ``sanlock`` (the real authority), ``flock`` (a
kernel lock: exact on one machine only) or ``none`` (no protection at all,
for tests).
"""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.fencing.base import Fencer
from heartbeat import plugins

NAMESPACE = 'heartbeat.fencers'


def load(conf: cfg.ConfigOpts) -> Fencer:
    """The configured fencer (not started)."""
    fencer_cls: type[Fencer] = plugins.plugin_class(
        NAMESPACE, conf.fencing.fencer, '[fencing] fencer')
    return fencer_cls(conf)
