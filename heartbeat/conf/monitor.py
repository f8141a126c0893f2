"""Options of the event monitor (poll to push) ([heartbeat_monitor])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup('heartbeat_monitor', title='Event monitor (poll to push)')

OPTS: list[cfg.Opt] = []


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
