"""Option sets for tests and benchmarks, without a config file.

::

    conf = make_conf(heartbeat={'report_interval': 0.5},
                     heartbeat_redis={'url': server.url})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from heartbeat import conf as hb_conf


def make_conf(**groups: Mapping[str, Any]) -> cfg.ConfigOpts:
    """A parsed ConfigOpts with heartbeat's options and these overrides.

    Each keyword is an option group, its mapping the options to override
    there.  No config file is read, not even /etc/heartbeat's, so a test
    sees the defaults and what it sets, whatever the host has.
    """
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    conf([], project='heartbeat', default_config_files=[],
         default_config_dirs=[])
    for group, values in groups.items():
        for name, value in values.items():
            conf.set_override(name, value, group)
    return conf
