"""Route decoded requests to handlers; every outcome is a response frame.

The dispatcher is the server's only contact with request content, and it
never raises: an undecodable body, an unknown method, arguments of the wrong
name or type, a handler's :class:`~heartbeat.exception.HeartbeatError` and
even a handler's bug all become error responses, so one bad caller cannot
stop the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import time
from typing import Any

from oslo_log import log as logging

from heartbeat.broker import errors
from heartbeat.broker import protocol
from heartbeat import exception
from heartbeat.metrics.timing import Timings

LOG = logging.getLogger(__name__)

#: Python types a JSON argument may be declared as.
ArgType = type | tuple[type, ...]


@dataclasses.dataclass(frozen=True)
class Param:
    """One argument of a method: its accepted types and whether required."""

    types: ArgType
    required: bool = False


@dataclasses.dataclass(frozen=True)
class Method:
    """A callable RPC method and its parameters.

    ``idempotent`` says that running the method twice for one call is
    harmless (see :data:`heartbeat.broker.protocol.IDEMPOTENT`, which the
    broker's method table must agree with).
    """

    handler: Callable[..., Any]
    params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    doc: str = ''
    idempotent: bool = False


def _type_ok(value: Any, types: ArgType) -> bool:
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in wanted:
        return False
    if isinstance(value, int) and float in wanted:
        return True
    return isinstance(value, wanted)


def _type_name(types: ArgType) -> str:
    wanted = types if isinstance(types, tuple) else (types,)
    return ' or '.join(t.__name__ for t in wanted)


def check_args(name: str, method: Method, args: Any) -> dict[str, Any]:
    """The keyword arguments of a call; BadArguments if they do not fit."""
    if not isinstance(args, dict):
        raise errors.BadArguments('args of %s must be a JSON object' % name)
    unknown = sorted(set(args) - set(method.params))
    if unknown:
        raise errors.BadArguments(
            '%s takes no argument %s; it takes: %s'
            % (name, ', '.join(map(repr, unknown)),
               ', '.join(sorted(method.params)) or 'nothing'))
    for pname, param in method.params.items():
        if pname not in args:
            if param.required:
                raise errors.BadArguments('%s needs argument %r'
                                          % (name, pname))
            continue
        if not _type_ok(args[pname], param.types):
            raise errors.BadArguments(
                'argument %r of %s must be %s, got %s'
                % (pname, name, _type_name(param.types),
                   type(args[pname]).__name__))
    return dict(args)


class Dispatcher:
    """Maps method names to :class:`Method` objects.

    With ``timings``, the seconds the handler of each call of a known
    method takes, failed calls included, are recorded under its name.
    """

    def __init__(self, methods: Mapping[str, Method],
                 timings: Timings | None = None) -> None:
        self.methods = dict(methods)
        self.timings = timings

    def run(self, obj: dict[str, Any]) -> Any:
        """Run the decoded request ``obj``; its result, or raise."""
        if _id_of(obj) is None:
            raise errors.BadRequest('request id must be an integer')
        name = obj.get('method')
        if not isinstance(name, str):
            raise errors.BadRequest('request method must be a string')
        method = self.methods.get(name)
        if method is None:
            raise errors.UnknownMethod(
                'no method %r; the broker has: %s'
                % (name[:64], ', '.join(sorted(self.methods))))
        kwargs = check_args(name, method, obj.get('args', {}))
        timings = self.timings
        if timings is None:
            return method.handler(**kwargs)
        started = time.monotonic()
        try:
            return method.handler(**kwargs)
        finally:
            timings.observe(name, time.monotonic() - started)

    def dispatch(self, body: bytes) -> bytes:
        """The response frame for the request ``body``; never raises."""
        call_id = None
        try:
            obj = protocol.decode_body(body)
            call_id = _id_of(obj)
            return protocol.ok_response(call_id, self.run(obj))
        except exception.HeartbeatError as err:
            return protocol.error_response(call_id, type(err).__name__,
                                           str(err))
        except Exception as err:
            # A handler bug (or an unencodable result) must cost one call,
            # not the broker.
            LOG.exception('Broker method failed unexpectedly')
            return protocol.error_response(
                call_id, 'InternalError',
                '%s: %s (see the broker log)' % (type(err).__name__, err))


def _id_of(obj: dict[str, Any]) -> int | None:
    call_id = obj.get('id')
    if isinstance(call_id, int) and not isinstance(call_id, bool):
        return call_id
    return None
