"""Options of the tooz driver (any tooz backend URL) ([heartbeat_tooz])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup('heartbeat_tooz',
                     title='tooz driver (any tooz backend URL)')

OPTS: list[cfg.Opt] = []


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
