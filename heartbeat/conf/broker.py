"""Options of the heartbeat-broker daemon ([broker])."""

from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup('broker', title='heartbeat-broker daemon')

OPTS: list[cfg.Opt] = []


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
