"""storage_domain: the domain monitor's verdict as a submonitor reading."""

from __future__ import annotations

from typing import ClassVar

from heartbeat.broker.submonitors.base import Reading
from heartbeat.broker.submonitors.base import Submonitor


class StorageDomainMonitor(Submonitor):
    """Valid or not, with the last probe delay, from the domain monitor."""

    name: ClassVar[str] = 'storage_domain'

    def measure(self) -> Reading:
        domain = self.context.domain
        if domain is None:
            return Reading(None, False, 'no domain monitor in this broker')
        view = domain.view()
        detail = view.monitor
        if view.delay_s is not None:
            detail += ', probe delay %.3fs' % view.delay_s
        if view.error:
            detail += ': %s' % view.error
        return Reading(view.delay_s, view.valid, detail)
