"""Entry point for oslo-config-generator (``oslo.config.opts``)."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base
from heartbeat.conf import storage


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return base.list_opts() + storage.list_opts()
