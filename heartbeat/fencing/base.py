"""The fencer contract and the lockspace/lease bookkeeping shared by fencers.

A fencer joins the cluster's lockspace with the host's ``[heartbeat]
host_id`` (asynchronously: :meth:`Fencer.join` returns at once and
:meth:`Fencer.view` shows the progress), reports the hosts it sees, and
acquires the protected workload's exclusive resource lease *for the
workload's own process* (``pid``), so that the authority can kill that
process when the lease cannot be renewed.  :meth:`Fencer.view` answers from
memory; only join/leave/acquire/release talk to the authority.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
import time
from typing import Any
from typing import ClassVar

from oslo_config import cfg

from heartbeat import exception
from heartbeat.workload.procs import pid_alive


class FencingError(exception.HeartbeatError):
    """The fencing authority refused or failed an operation."""


class BindingMissing(FencingError):
    """The fencing authority's client library is not installed."""


class LockspaceError(FencingError):
    """Joining or leaving the lockspace failed."""


class LeaseError(FencingError):
    """Acquiring or releasing the resource lease failed."""


class LeaseBusy(LeaseError):
    """Another host holds the resource lease."""


#: Lockspace states, in the order a host goes through them.
LEFT = 'left'
JOINING = 'joining'
JOINED = 'joined'
LEAVING = 'leaving'
FAILED = 'failed'


@dataclasses.dataclass
class Holder:
    """A process holding (or having held) the resource lease."""

    pid: int
    since: float
    lost_reason: str | None = None


class Bookkeeping:
    """Thread-safe lockspace state and lease holders of one fencer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = LEFT
        self.state_since = time.monotonic()
        self.error: str | None = None
        self.holders: dict[int, Holder] = {}
        self.lost: list[Holder] = []
        self.hosts: list[dict[str, Any]] = []
        self.hosts_note: str | None = None

    def set_state(self, state: str, error: str | None = None) -> None:
        with self.lock:
            if state != self.state:
                self.state_since = time.monotonic()
            self.state = state
            self.error = error

    def reap(self) -> None:
        """Move holders whose process has gone to the lost list."""
        with self.lock:
            for pid, holder in list(self.holders.items()):
                if not pid_alive(pid):
                    holder.lost_reason = (
                        'holder process %d exited while holding the lease '
                        '(killed by the fencing authority, or crashed)' % pid)
                    self.lost.append(holder)
                    del self.holders[pid]
            del self.lost[:-10]

    def view(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.lock:
            return {
                'lockspace': {'state': self.state,
                              'since_s': round(now - self.state_since, 3),
                              'error': self.error},
                'hosts': list(self.hosts),
                'hosts_note': self.hosts_note,
                'lease': {
                    'held': bool(self.holders),
                    'holders': [{'pid': h.pid,
                                 'age_s': round(now - h.since, 3)}
                                for h in self.holders.values()],
                    'lost': [{'pid': h.pid, 'reason': h.lost_reason}
                             for h in self.lost],
                },
            }


class Fencer(abc.ABC):
    """Base class of fencers; see the module docstring."""

    name: ClassVar[str]
    #: False for fencers that protect nothing.
    safe: ClassVar[bool] = True

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.book = Bookkeeping()

    @property
    def host_id(self) -> int:
        host_id: int | None = self.conf.heartbeat.host_id
        if host_id is None:
            raise exception.ConfigError(
                'Fencing needs [heartbeat] host_id (1..2000), unique per '
                'host: it is the host\'s id in the lockspace.')
        return host_id

    def start(self) -> None:  # noqa: B027 (optional hook)
        """Prepare (load client libraries, start pollers)."""

    def stop(self) -> None:  # noqa: B027 (optional hook)
        """Stop pollers and leave the lockspace if no lease is held."""

    @abc.abstractmethod
    def join(self) -> dict[str, Any]:
        """Start joining the lockspace; return at once with the view."""

    @abc.abstractmethod
    def leave(self) -> dict[str, Any]:
        """Leave the lockspace; LockspaceError while a lease is held."""

    @abc.abstractmethod
    def acquire(self, pid: int) -> dict[str, Any]:
        """Acquire the resource lease for process ``pid``."""

    @abc.abstractmethod
    def release(self, pid: int) -> dict[str, Any]:
        """Release the resource lease of process ``pid``."""

    def view(self) -> dict[str, Any]:
        """Lockspace, hosts and lease state, from memory."""
        out = self.book.view()
        out['fencer'] = self.name
        out['safe'] = self.safe
        out['host_id'] = self.conf.heartbeat.host_id
        return out
