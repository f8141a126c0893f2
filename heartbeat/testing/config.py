"""Option sets for tests and benchmarks, without a config file.

::

    conf = make_conf(heartbeat={'report_interval': 0.5},
                     heartbeat_redis={'url': server.url})
    conf = make_conf(register=[fencing_conf.register_opts],
                     fencing={'fencer': 'none'})
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg

from heartbeat import conf as hb_conf


def make_conf(*, argv: Sequence[str] = (),
              register: Iterable[Callable[[cfg.ConfigOpts], None]] = (),
              **groups: Mapping[str, Any]) -> cfg.ConfigOpts:
    """A parsed ConfigOpts with heartbeat's options and these overrides.

    Each keyword is an option group, its mapping the options to override
    there.  ``register`` are more ``register_opts(conf)`` functions (the
    daemons' groups: broker, fencing, submonitors...), called before
    parsing; ``argv`` is the command line to parse (``--config-file``).
    No other config file is read, not even /etc/heartbeat's, so a test
    sees the defaults, its files and what it sets, whatever the host has.
    """
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    for register_opts in register:
        register_opts(conf)
    conf(list(argv), project='heartbeat', default_config_files=[],
         default_config_dirs=[])
    for group, values in groups.items():
        for name, value in values.items():
            conf.set_override(name, value, group)
    return conf
