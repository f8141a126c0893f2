"""Loading plugins (drivers, fencers, connections, submonitors) by name.

Every pluggable part of heartbeat is a stevedore entry point; this module is
the one place that turns a configured name into a class, and an unknown name
into an error that names the option and lists what is installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

import stevedore

from heartbeat import exception


def names(namespace: str) -> list[str]:
    """Names registered under ``namespace`` (nothing is imported)."""
    return sorted({ep.name for ep in metadata.entry_points(group=namespace)})


def plugin_class(namespace: str, name: str, option: str,
                 error: type[exception.HeartbeatError] = (
                     exception.ConfigError),
                 hint: str = '', extras: Mapping[str, str] | None = None
                 ) -> Any:
    """The class registered as ``name`` under ``namespace``.

    ``option`` names the option that chose ``name`` (for the message);
    ``error`` is raised, with ``hint`` appended, when no such plugin exists.
    A plugin that is registered but cannot be imported (a library it needs
    is missing) raises ``error`` too, naming what to install: the entry of
    ``extras`` for ``name``, a pip requirement such as ``heartbeat[redis]``.
    """
    try:
        mgr: Any = stevedore.DriverManager(namespace, name,
                                           invoke_on_load=False)
    except ImportError as err:
        extra = (extras or {}).get(name)
        raise error(
            '%s %r, chosen by %s, cannot be loaded: %s.%s'
            % (namespace.rsplit('.', 1)[-1].rstrip('s').capitalize(), name,
               option, exception.describe(err).rstrip('.'),
               (' Install it with: pip install %s' % extra) if extra
               else '')) from err
    except stevedore.exception.NoMatches as err:
        raise error(
            'No %s named %r; set %s to one of: %s.%s'
            % (namespace.rsplit('.', 1)[-1].rstrip('s'), name, option,
               ', '.join(names(namespace)) or 'none installed',
               (' ' + hint) if hint else '')) from err
    return mgr.driver
