"""The typed status contract of the broker (what ``get_status`` returns).

The broker builds a :class:`BrokerStatus` from its parts and sends
:meth:`BrokerStatus.to_dict` over the wire; clients (the agent, the CLIs)
rebuild it with :meth:`BrokerStatus.from_dict` and read typed fields only.
The contract is versioned: :data:`STATUS_VERSION` grows when a field changes
meaning or goes away (a client refuses a status of another major version);
new fields are added with defaults, and fields a client does not know are
ignored, so a newer broker still answers an older agent.

Everything here is pure data; nothing does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import functools
import types
import typing
from typing import Any
from typing import TypeVar

from heartbeat import exception

#: Major version of the status layout.
STATUS_VERSION = 1

T = TypeVar('T')


class StatusVersionError(exception.HeartbeatError):
    """The broker speaks a status version this client does not know."""


# -- lockspace states (the fencer's progress in the lockspace) ------------

LOCKSPACE_LEFT = 'left'
LOCKSPACE_JOINING = 'joining'
LOCKSPACE_JOINED = 'joined'
LOCKSPACE_LEAVING = 'leaving'
LOCKSPACE_FAILED = 'failed'
LOCKSPACE_STATES = (LOCKSPACE_LEFT, LOCKSPACE_JOINING, LOCKSPACE_JOINED,
                    LOCKSPACE_LEAVING, LOCKSPACE_FAILED)

# -- domain monitor states -------------------------------------------------

DOMAIN_NEVER_STARTED = 'never_started'
DOMAIN_RUNNING = 'running'
DOMAIN_STOPPED = 'stopped'

# -- what a broker publishes beside its agent's payload ---------------------

#: Set (True) in a member's payload while its agent has not posted for three
#: of its own loops: its claims are not current.
AGENT_STALE = 'agent_stale'
#: Posts an agent may miss before its claims are marked stale.
STALE_LOOPS = 3


def agent_stale(payload: Mapping[str, Any], posted_at: float,
                now: float) -> bool:
    """Whether the agent that posted ``payload`` at ``posted_at`` went quiet.

    The agent says its loop interval in its payload; a state posted by
    something else (no interval) never goes stale.
    """
    agent = payload.get('agent')
    interval = agent.get('loop_interval') if isinstance(agent, dict) else None
    if (not isinstance(interval, (int, float)) or isinstance(interval, bool)
            or interval <= 0):
        return False
    return now - posted_at > STALE_LOOPS * interval + 1.0


# -- maintenance modes -----------------------------------------------------

MAINTENANCE_LOCAL = 'local'
MAINTENANCE_GLOBAL = 'global'
MAINTENANCE_NONE = 'none'
MAINTENANCE_MODES = (MAINTENANCE_LOCAL, MAINTENANCE_GLOBAL, MAINTENANCE_NONE)


@dataclasses.dataclass(frozen=True)
class HostInfo:
    """Who this broker is."""

    host_id: int | None = None
    host: str = ''
    member_id: str = ''
    pid: int = 0
    #: Seconds since the broker started.
    uptime_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class OwnState:
    """What this host's agent last posted."""

    member_id: str = ''
    group: str = ''
    state: str | None = None
    score: int | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    posted_age_s: float = 0.0
    version: int = 0
    local_maintenance: bool = False


@dataclasses.dataclass(frozen=True)
class BusyIo:
    """The storage operation the writer is blocked in."""

    operation: str = ''
    for_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class WriterHealth:
    """How the writer thread fares with the storage."""

    connected: bool = False
    healthy: bool = False
    stalled: bool = False
    stale_s: float = 0.0
    last_write_age_s: float | None = None
    last_read_age_s: float | None = None
    busy: BusyIo | None = None
    pending_write: bool = False
    superseded: int = 0
    writes: int = 0
    reads: int = 0
    failures: int = 0
    last_error: str | None = None
    written_version: int = 0
    posted_version: int = 0
    written_seq: int = 0


@dataclasses.dataclass(frozen=True)
class StorageInfo:
    """Where the broker publishes."""

    driver: str = ''
    connection: str = ''
    path: str | None = None


@dataclasses.dataclass(frozen=True)
class Peer:
    """One member of the broker's group as the broker's observer sees it.

    ``up`` is None while the observer has not watched the member long
    enough to tell (status ``unknown``).
    """

    member_id: str = ''
    group: str = ''
    is_self: bool = False
    up: bool | None = None
    status: str = 'unknown'
    state: str | None = None
    score: int | None = None
    seq: int = 0
    last_change_age_s: float = 0.0
    location: str | None = None
    invalid_reason: str | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The host id the member's broker publishes (None if not said).
    host_id: int | None = None
    #: ``local`` or ``none``, as the member's broker publishes it.
    maintenance: str = MAINTENANCE_NONE


@dataclasses.dataclass(frozen=True)
class Peers:
    """The broker's observer of its group."""

    #: Seconds since the first successful read of the group (None before):
    #: a member silent for service_down_time within it is known down.
    observed_s: float | None = None
    members: list[Peer] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class DomainStatus:
    """The storage domain monitor."""

    monitor: str = DOMAIN_NEVER_STARTED
    validated: bool = False
    valid: bool = False
    delay_s: float | None = None
    last_probe_age_s: float | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class SubmonitorReading:
    """A submonitor's newest reading."""

    value: Any = None
    ok: bool | None = None
    detail: str = ''
    error: str | None = None
    age_s: float | None = None
    interval_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class LockspaceStatus:
    """The fencer's progress in the lockspace."""

    state: str = LOCKSPACE_LEFT
    since_s: float = 0.0
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class FencedHost:
    """A host the fencing authority sees in the lockspace."""

    host_id: int = 0
    generation: int = 0
    timestamp: int = 0
    state: str = 'unknown'


@dataclasses.dataclass(frozen=True)
class LeaseHolder:
    """A local process that holds the workload lease."""

    pid: int = 0
    age_s: float = 0.0
    #: True when the holder was found again after a broker restart.
    recovered: bool = False


@dataclasses.dataclass(frozen=True)
class LostHolder:
    """A local process that held the lease and is gone."""

    pid: int = 0
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class LeaseStatus:
    """The workload lease on this host."""

    held: bool = False
    holders: list[LeaseHolder] = dataclasses.field(default_factory=list)
    lost: list[LostHolder] = dataclasses.field(default_factory=list)
    #: Holders recorded before a broker restart that the fencing authority
    #: has not confirmed yet (neither held nor lost: wait for them).
    pending: list[LeaseHolder] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FencingStatus:
    """The fencer: lockspace, hosts it sees, the lease."""

    fencer: str = ''
    safe: bool = False
    host_id: int | None = None
    lockspace: LockspaceStatus = dataclasses.field(
        default_factory=LockspaceStatus)
    hosts: list[FencedHost] = dataclasses.field(default_factory=list)
    hosts_note: str | None = None
    lease: LeaseStatus = dataclasses.field(default_factory=LeaseStatus)
    warning: str | None = None


@dataclasses.dataclass(frozen=True)
class MaintenanceStatus:
    """Local and cluster-wide maintenance as the broker knows them."""

    local: bool = False
    #: The cluster-wide mode read back from the driver (None: not known).
    global_mode: str | None = None
    #: A global mode requested and not yet written.
    global_pending: str | None = None
    #: Why the newest global write failed, if it did.
    global_error: str | None = None
    #: Whether the driver can hold cluster-wide flags at all.
    global_supported: bool = True

    @property
    def global_on(self) -> bool:
        return self.global_mode == MAINTENANCE_GLOBAL


@dataclasses.dataclass(frozen=True)
class ReloadStatus:
    """Configuration reloads so far."""

    count: int = 0
    failed: int = 0
    applied: list[str] = dataclasses.field(default_factory=list)
    restart_needed: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    last_age_s: float | None = None


@dataclasses.dataclass(frozen=True)
class OptionsInUse:
    """The broker's timing options, so clients need not read its config."""

    report_interval: float = 0.0
    service_down_time: float = 0.0
    peer_refresh_interval: float = 0.0
    storage_stall_after: float = 0.0
    domain_monitor_interval: float = 0.0
    submonitor_interval: float = 0.0
    submonitor_timeout: float = 0.0
    allowed_uids: list[int] = dataclasses.field(default_factory=list)
    allowed_gids: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BrokerStatus:
    """Everything a broker knows, answered from memory."""

    version: int = STATUS_VERSION
    protocol: int = 1
    host: HostInfo = dataclasses.field(default_factory=HostInfo)
    own: OwnState = dataclasses.field(default_factory=OwnState)
    writer: WriterHealth = dataclasses.field(default_factory=WriterHealth)
    storage: StorageInfo = dataclasses.field(default_factory=StorageInfo)
    peers: Peers = dataclasses.field(default_factory=Peers)
    domain: DomainStatus = dataclasses.field(default_factory=DomainStatus)
    submonitors: dict[str, SubmonitorReading] = dataclasses.field(
        default_factory=dict)
    fencing: FencingStatus = dataclasses.field(default_factory=FencingStatus)
    maintenance: MaintenanceStatus = dataclasses.field(
        default_factory=MaintenanceStatus)
    reload: ReloadStatus = dataclasses.field(default_factory=ReloadStatus)
    options: OptionsInUse = dataclasses.field(default_factory=OptionsInUse)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for the wire."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> BrokerStatus:
        """Rebuild a status sent by :meth:`to_dict`.

        Raises :class:`StatusVersionError` for another major version and
        :class:`~heartbeat.exception.HeartbeatError` for data that does not
        fit the contract.
        """
        if not isinstance(data, dict):
            raise exception.HeartbeatError(
                'Broker status must be a JSON object, got %s.'
                % type(data).__name__)
        version = data.get('version')
        if version != STATUS_VERSION:
            raise StatusVersionError(
                'The broker sent status version %r; this client knows '
                'version %d. Run the same heartbeat release on both sides.'
                % (version, STATUS_VERSION))
        return from_dict(cls, data)


# -- conversion --------------------------------------------------------------

def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as plain data (nested dataclasses too)."""
    out: dict[str, Any] = dataclasses.asdict(obj)
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Any, where: str = 'status') -> T:
    """Build dataclass ``cls`` from ``data``, ignoring unknown keys."""
    if not isinstance(data, dict):
        raise exception.HeartbeatError(
            '%s must be a JSON object, got %s.' % (where, type(data).__name__))
    hints = _hints(cls)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in data:
            kwargs[field.name] = _convert(hints[field.name], data[field.name],
                                          '%s.%s' % (where, field.name))
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where) if len(inner) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise exception.HeartbeatError('%s must be a list.' % where)
        return [_convert(args[0], v, '%s[%d]' % (where, i))
                for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise exception.HeartbeatError('%s must be an object.' % where)
        return {k: _convert(args[1], v, '%s.%s' % (where, k))
                for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(
            value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise exception.HeartbeatError(
            '%s must be %s, got %r.' % (where, hint.__name__, value))
    return value
