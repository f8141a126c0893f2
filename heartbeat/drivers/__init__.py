"""Drivers carry reports between members and observers.

Drivers are found through the ``heartbeat.drivers`` stevedore namespace;
:func:`load` picks the configured one and checks the capabilities its caller
requires before anything is connected.
"""

from __future__ import annotations

from collections.abc import Iterable

from oslo_config import cfg

from heartbeat.drivers.base import Capability
from heartbeat.drivers.base import Driver
from heartbeat import exception
from heartbeat import plugins

NAMESPACE = 'heartbeat.drivers'

#: What to install for a driver whose libraries are missing.
EXTRAS = {
    'redis': "'heartbeat[redis]'",
    'tooz': "'heartbeat[zookeeper]' (or [etcd], [memcached], [tooz] for "
            "tooz alone)",
}


def names() -> list[str]:
    """Names of every installed driver."""
    return plugins.names(NAMESPACE)


def load(conf: cfg.ConfigOpts, name: str | None = None,
         required: Iterable[Capability] = ()) -> Driver:
    """Instantiate the driver ``name`` (default: [heartbeat] driver)."""
    name = name or conf.heartbeat.driver
    driver_cls: type[Driver] = plugins.plugin_class(
        NAMESPACE, name, '[heartbeat] driver', exception.DriverNotFound,
        'A missing one may need its extra, e.g. "pip install '
        'heartbeat[redis]".', extras=EXTRAS)
    missing = set(required) - set(driver_cls.capabilities)
    if missing:
        raise exception.CapabilityMissing(
            'Driver %r lacks %s, which this caller requires; choose a driver '
            'that declares it.'
            % (name, ', '.join(sorted(c.value for c in missing))))
    return driver_cls(conf)
