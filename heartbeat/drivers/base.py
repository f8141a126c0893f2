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
* With :attr:`Capability.SERVER_LIVENESS`, every snapshot tells the ages
  of members' newest beats on the backend's clock
  (:class:`~heartbeat.model.Beats`), and a beat that changes nothing but
  the seq is not listed by an incremental read.
* With :attr:`Capability.PUSH`, :meth:`Driver.listen` calls its callback
  with the group name whenever a report of that group may have changed, so
  that the monitor reads at once instead of waiting for its next poll.
* :meth:`Driver.leave` marks the member as having left cleanly, so that
  observers see it leave instead of going down.
* With :attr:`Capability.CLUSTER_FLAGS`, :meth:`Driver.set_flag` stores one
  small cluster-wide string flag (``maintenance = global|none`` is the one
  heartbeat itself uses) and :meth:`Driver.get_flags` returns all of them in
  one read.  A flag written is on the backend, readable by every host, when
  ``set_flag`` returns; it outlives the process that wrote it and is never
  expired.  Flags are bounded so that every backend can hold them next to
  the reports: a name is 1 to 32 characters of ``[a-z0-9_]`` starting with
  a letter, a value at most 64 printable ASCII characters, a cluster at
  most 16 names, ``maintenance`` included (a value is replaced, a name
  never removed), and a known
  name takes only its known values (``maintenance``: ``none`` or
  ``global``).  Anything else is refused with :class:`InvalidFlag` and
  nothing is written; a stored entry that breaks these rules (written by
  something else) is left out of ``get_flags`` rather than failing it, and
  a known name never set reads as its default (``maintenance``: ``none``).
  Backend failures raise :class:`~heartbeat.exception.BackendError`.
  Drivers without the capability raise
  :class:`~heartbeat.exception.CapabilityMissing` from both methods.

Drivers judge nothing: liveness is decided by the observer from how the
reports change on its own clock, or, with SERVER_LIVENESS, from the ages
the backend tells on its own (see :mod:`heartbeat.liveness`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
import enum
import re
from typing import Any
from typing import ClassVar

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat import exception
from heartbeat.model import Report
from heartbeat.model import Snapshot

LOG = logging.getLogger(__name__)

#: The flag that holds the cluster-wide maintenance mode.
MAINTENANCE_FLAG = 'maintenance'
#: Names whose values are fixed, and the values they take (the first is
#: what the flag reads as until it is set).
KNOWN_FLAG_VALUES: dict[str, tuple[str, ...]] = {
    MAINTENANCE_FLAG: ('none', 'global'),
}
FLAG_NAME_RE = re.compile(r'[a-z][a-z0-9_]{0,31}\Z')
FLAG_VALUE_RE = re.compile(r'[\x20-\x7e]{0,64}\Z')
#: Most flag names one cluster holds, the known ones included.
MAX_FLAGS = 16
MAX_OTHER_FLAGS = MAX_FLAGS - len(KNOWN_FLAG_VALUES)


class InvalidFlag(exception.ConfigError):
    """A cluster flag name or value breaks the bounds of the contract."""


def flag_error(name: object, value: object) -> str | None:
    """Why ``name = value`` is not a valid flag; None if it is."""
    if not isinstance(name, str) or not FLAG_NAME_RE.match(name):
        return ('flag name %r must be 1 to 32 characters of [a-z0-9_] '
                'starting with a letter' % (name,))
    if not isinstance(value, str) or not FLAG_VALUE_RE.match(value):
        return ('value %r of flag %s must be a string of at most 64 '
                'printable ASCII characters' % (value, name))
    known = KNOWN_FLAG_VALUES.get(name)
    if known is not None and value not in known:
        return ('flag %s takes one of %s, not %r'
                % (name, ', '.join(known), value))
    return None


def check_flag(name: str, value: str,
               existing: Collection[str] | None = None) -> None:
    """Raise :class:`InvalidFlag` unless ``name = value`` may be written.

    ``existing`` (the names already stored), when the caller knows them,
    also checks that a new name stays within :data:`MAX_FLAGS`.
    """
    error = flag_error(name, value)
    if error is not None:
        raise InvalidFlag('Refusing cluster flag: %s.' % error)
    if existing is not None and name not in KNOWN_FLAG_VALUES:
        # Known names always count, set or not, so that every backend
        # reaches the limit at the same name.
        others = set(existing) - KNOWN_FLAG_VALUES.keys()
        if name not in others and len(others) >= MAX_OTHER_FLAGS:
            raise too_many_flags(name)


def too_many_flags(name: str) -> InvalidFlag:
    return InvalidFlag(
        'Refusing cluster flag %s: the cluster already holds %d flags, the '
        'most it may.' % (name, MAX_FLAGS))


def valid_flags(raw: Mapping[str, object], where: str) -> dict[str, str]:
    """The entries of ``raw`` that are valid flags, known names defaulted.

    One foreign or damaged entry must not hide the others, so it is logged
    and left out instead of failing the whole read.  A known name never
    set reads as its first value, so every driver answers alike.
    """
    flags: dict[str, str] = {}
    for name, value in raw.items():
        error = flag_error(name, value)
        if error is None:
            flags[name] = str(value)
        else:
            LOG.warning('Ignoring a cluster flag stored in %s: %s.', where,
                        error)
    for name, values in KNOWN_FLAG_VALUES.items():
        flags.setdefault(name, values[0])
    return flags


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
    #: The backend tells liveness on its own clock
    #: (:attr:`~heartbeat.model.Snapshot.beats`): a beat that changes
    #: nothing but the seq is no change, so incremental reads list state
    #: changes only and the observer never reads unchanged beats.
    SERVER_LIVENESS = 'server_liveness'
    #: Cluster-wide flags: :meth:`Driver.set_flag`, :meth:`Driver.get_flags`
    #: (global maintenance needs them).
    CLUSTER_FLAGS = 'cluster_flags'


class Driver(abc.ABC):
    """Base class of every driver; see the module docstring."""

    #: Entry-point name of the driver.
    name: ClassVar[str]
    #: What the driver can do beyond the contract.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: Why the driver has no CLUSTER_FLAGS, told in the refusal.
    no_flags_reason: ClassVar[str] = 'it declares no cluster_flags'

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @property
    @abc.abstractmethod
    def payload_limit(self) -> int:
        """Largest encoded report, in bytes, that publish accepts."""

    def check(self) -> None:
        """Check the configuration without connecting to anything.

        Raises ConfigError for what :meth:`start` would refuse whatever
        the backend's state (a URL that cannot be parsed, an unknown
        scheme), so that a daemon refuses at start instead of retrying a
        connection that can never work.  Nothing to check by default.
        """
        return None

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

    def listen(self, callback: Callable[[str], bool | None],
               batch: float = 0.0) -> Callable[[], None]:
        """Call ``callback(group)`` on every change; return a canceller.

        The first change is told at once; the changes that come within
        ``batch`` seconds after it are told together when that time is
        over, each group once, which is all a caller that reads at most
        once every ``batch`` seconds needs to be told.  A callback that
        returns False has no use for its group (nobody reads it): no
        wait follows it.  Only drivers with the PUSH capability implement
        this.
        """
        raise exception.CapabilityMissing(
            'Driver %r cannot push changes; the monitor polls it instead.'
            % self.name)

    def set_flag(self, name: str, value: str) -> None:
        """Store the cluster-wide flag ``name = value``, durably.

        Only drivers with the CLUSTER_FLAGS capability implement this; see
        the module docstring for the bounds of names and values.
        """
        raise self._flags_missing()

    def get_flags(self) -> dict[str, str]:
        """Every cluster-wide flag, in one read of the backend.

        Only drivers with the CLUSTER_FLAGS capability implement this.
        """
        raise self._flags_missing()

    def _flags_missing(self) -> exception.CapabilityMissing:
        return exception.CapabilityMissing(
            'Driver %r cannot hold cluster-wide flags (%s), so global '
            'maintenance is not available with it; use [heartbeat] driver = '
            'storage or redis for that.' % (self.name, self.no_flags_reason))
