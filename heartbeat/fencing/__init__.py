"""Fencing authorities: who may run the protected workload.

Fencers are plugins of the ``heartbeat.fencers`` entry point, chosen by
``[fencing] fencer``: ``sanlock`` (the real authority) or ``none`` (no
protection at all, for demos and tests).
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
import stevedore

from heartbeat import exception
from heartbeat.fencing.base import Fencer

NAMESPACE = 'heartbeat.fencers'


def load(conf: cfg.ConfigOpts) -> Fencer:
    """The configured fencer (not started)."""
    name = conf.fencing.fencer
    try:
        mgr: Any = stevedore.DriverManager(NAMESPACE, name,
                                           invoke_on_load=False)
    except stevedore.exception.NoMatches as err:
        raise exception.ConfigError(
            'No fencer named %r; set [fencing] fencer to sanlock or none.'
            % name) from err
    fencer_cls: type[Fencer] = mgr.driver
    return fencer_cls(conf)
