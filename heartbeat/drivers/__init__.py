"""Drivers carry reports between members and observers.

Drivers are found through the ``heartbeat.drivers`` stevedore namespace;
:func:`load` picks the configured one and checks the capabilities its caller
requires before anything is connected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oslo_config import cfg
import stevedore

from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat import exception

NAMESPACE = 'heartbeat.drivers'


def names() -> list[str]:
    """Names of every installed driver."""
    return sorted(stevedore.ExtensionManager(NAMESPACE).names())


def load(conf: cfg.ConfigOpts, name: str | None = None,
         required: Iterable[Capability] = ()) -> Driver:
    """Instantiate the driver ``name`` (default: [heartbeat] driver)."""
    name = name or conf.heartbeat.driver
    try:
        mgr: Any = stevedore.DriverManager(NAMESPACE, name,
                                           invoke_on_load=False)
    except stevedore.exception.NoMatches as err:
        raise exception.DriverNotFound(
            'No heartbeat driver named %r; installed drivers: %s. Set '
            '[heartbeat] driver to one of them (a missing one may need its '
            'extra, e.g. "pip install heartbeat[redis]").'
            % (name, ', '.join(names()) or 'none')) from err
    driver_cls: type[Driver] = mgr.driver
    missing = set(required) - set(driver_cls.capabilities)
    if missing:
        raise exception.CapabilityMissing(
            'Driver %r lacks %s, which this caller requires; choose a driver '
            'that declares it.'
            % (name, ', '.join(sorted(c.value for c in missing))))
    return driver_cls(conf)
