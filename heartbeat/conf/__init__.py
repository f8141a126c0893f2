"""Configuration options of heartbeat, one module per area.

Library code never reads a global CONF: every entry point takes the
``oslo_config.cfg.ConfigOpts`` of its caller and registers what it needs with
:func:`register_opts`.
"""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base
from heartbeat.conf import monitor
from heartbeat.conf import redis
from heartbeat.conf import storage
from heartbeat.conf import tooz
from heartbeat import exception


LIBRARY_AREAS = (base, storage, monitor, redis, tooz)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every library option on ``conf`` (idempotent).

    Daemon options ([broker], [fencing], ...) are registered by the daemons
    themselves, from their own conf modules.
    """
    for area in LIBRARY_AREAS:
        area.register_opts(conf)


def validate(conf: cfg.ConfigOpts) -> None:
    """Reject option combinations that cannot work, saying what to change."""
    hb = conf.heartbeat
    if hb.service_down_time < 2 * hb.report_interval:
        raise exception.ConfigError(
            '[heartbeat] service_down_time (%ss) must be at least twice '
            '[heartbeat] report_interval (%ss): raise service_down_time to '
            '%ss or more, or lower report_interval.'
            % (hb.service_down_time, hb.report_interval,
               2 * hb.report_interval))
    storage.validate(conf)
