"""Errors of the broker RPC; all are HeartbeatError subclasses."""

from __future__ import annotations

from heartbeat import exception


class BrokerError(exception.HeartbeatError):
    """A call to the broker failed."""


class ProtocolError(BrokerError):
    """A frame could not be decoded; the connection cannot carry on."""


class BrokerUnavailable(BrokerError):
    """The broker's socket cannot be reached."""


class BrokerTimeout(BrokerError):
    """The broker did not answer within the call's timeout."""


class RemoteError(BrokerError):
    """The broker answered with an error.

    ``kind`` is the error's class name on the broker side (for example
    ``UnknownMethod``, ``BadArguments``, ``PermissionDenied``, or a
    :class:`~heartbeat.exception.HeartbeatError` subclass name).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__('%s: %s' % (kind, message))
        self.kind = kind
        self.message = message


class UnknownMethod(BrokerError):
    """The request names a method the broker does not have."""


class BadArguments(BrokerError):
    """The request's arguments do not match the method."""


class BadRequest(BrokerError):
    """The request is not a well-formed JSON request object."""
