"""The contract every driver implements.

A driver moves :class:`~heartbeat.model.Report` objects from members to
observers.  The contract, which one test suite checks against every driver:

* :meth:`Driver.start` connects; :meth:`Driver.stop` disconnects and may be
  called more than once.  Neither blocks for longer than the backend's own
  timeouts.
* :meth:`Driver.join` claims the member's place in its group before the
  first publish.  A place already held by another live member is refused
  with :class:`~heartbeat.exception.HostIdConflict` (never overwritten).
* :meth:`Driver.publish` stores the newest report of a joined member.  It
  raises :class:`~heartbeat.exception.PayloadTooLarge` when the encoded
  report exceeds :attr:`Driver.payload_limit`, and a
  :class:`~heartbeat.exception.BackendError` for backend failures (the
  caller retries on its next beat).
* :meth:`Driver.snapshot` returns every readable report of a group (or of
  all groups) in one batched read, plus the records it found but could not
  trust.  One bad record never hides the others.
* With :attr:`Capability.INCREMENTAL`, ``snapshot(group, since=cursor)``
  returns an incomplete snapshot of what changed since ``cursor`` (see
  :class:`~heartbeat.model.Snapshot`); other drivers ignore ``since``.
* With :attr:`Capability.PUSH`, :meth:`Driver.listen` calls its callback
  with the group name whenever a report of that group may have changed, so
  that the monitor reads at once instead of waiting for its next poll.
* :meth:`Driver.leave` marks the member as having left cleanly, so that
  observers see it leave instead of going down.

Drivers judge nothing: liveness is decided by the observer from how the
reports change on its own clock (see :mod:`heartbeat.liveness`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
import enum
from typing import Any
from typing import ClassVar

from oslo_config import cfg

from heartbeat import exception
from heartbeat.model import Report
from heartbeat.model import Snapshot


class Capability(enum.Enum):
    """What a driver can do beyond the contract."""

    #: Changes are pushed to observers as they happen (no polling needed).
    PUSH = 'push'
    #: The backend itself expires members that stop beating.
    SERVER_TTL = 'server_ttl'
    #: Members are placed by [heartbeat] host_id, the identity sanlock uses,
    #: so the driver can run beside sanlock fencing.
    FENCING_COMPATIBLE = 'fencing_compatible'
    #: Reads cover every member of a group in one request.
    BATCHED_READ = 'batched_read'
    #: ``snapshot(since=cursor)`` returns only what changed (O(changes)).
    INCREMENTAL = 'incremental'


class Driver(abc.ABC):
    """Base class of every driver; see the module docstring."""

    #: Entry-point name of the driver.
    name: ClassVar[str]
    #: What the driver can do beyond the contract.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @property
    @abc.abstractmethod
    def payload_limit(self) -> int:
        """Largest encoded report, in bytes, that publish accepts."""

    @abc.abstractmethod
    def start(self) -> None:
        """Connect to the backend and check it is usable."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Disconnect; safe to call twice."""

    @abc.abstractmethod
    def join(self, group: str, member_id: str) -> None:
        """Claim ``member_id``'s place in ``group`` before publishing."""

    @abc.abstractmethod
    def publish(self, report: Report) -> None:
        """Store ``report`` as the newest report of its member."""

    @abc.abstractmethod
    def leave(self, report: Report) -> None:
        """Publish ``report`` (its ``left`` flag set) as the member's last."""

    @abc.abstractmethod
    def snapshot(self, group: str | None = None,
                 since: Any = None) -> Snapshot:
        """Read every report of ``group`` (None: every group) at once.

        Drivers with INCREMENTAL return only changes when ``since`` is a
        cursor from an earlier snapshot; others ignore ``since``.
        """

    def listen(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(group)`` on every change; return a canceller.

        Only drivers with the PUSH capability implement this.
        """
        raise exception.CapabilityMissing(
            'Driver %r cannot push changes; the monitor polls it instead.'
            % self.name)
