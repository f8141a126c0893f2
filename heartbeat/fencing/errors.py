"""Errors of the fencing authorities; all are HeartbeatError subclasses.

Their class names travel over the broker's RPC as the error ``kind`` (an
agent tells a busy lease from a failure by ``LeaseBusy``): keep them.
"""

from __future__ import annotations

from heartbeat import exception


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
