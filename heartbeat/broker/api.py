"""The broker's RPC methods: names, parameters, idempotency, Broker calls.

:data:`METHODS` is the table of every method, independent of any broker;
:func:`dispatcher_for` binds it to the :class:`~heartbeat.broker.core.Broker`
method of the same name.  Each entry declares whether the method is
idempotent; the client decides what it may re-send from
:data:`heartbeat.broker.protocol.IDEMPOTENT`, and the two must agree (a unit
test holds them together).
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import TYPE_CHECKING

from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker.dispatcher import Method
from heartbeat.broker.dispatcher import Param

if TYPE_CHECKING:
    from heartbeat.broker.core import Broker

NULLABLE_STR = (str, type(None))
NULLABLE_INT = (int, type(None))


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """What a method takes and promises, without its handler."""

    params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    doc: str = ''
    idempotent: bool = False


#: Every RPC method of the broker (see protocol.IDEMPOTENT for the reason
#: behind each ``idempotent`` value).
METHODS: Mapping[str, MethodSpec] = {
    'ping': MethodSpec(doc='Liveness of the broker itself.',
                       idempotent=True),
    'put_state': MethodSpec({
        'state': Param(NULLABLE_STR, required=True),
        'score': Param(NULLABLE_INT),
        'payload': Param(dict),
    }, doc='Post this host\'s state; written in the background.',
        idempotent=True),
    'get_status': MethodSpec(doc='Everything the broker knows, from memory.',
                             idempotent=True),
    'start_domain_monitor': MethodSpec(
        doc='Start probing the storage domain.', idempotent=True),
    'stop_domain_monitor': MethodSpec(
        doc='Stop probing the storage domain.', idempotent=True),
    'set_maintenance': MethodSpec({'mode': Param(str, required=True)},
                                  doc='Set the maintenance mode.',
                                  idempotent=True),
    'lockspace_join': MethodSpec(doc='Start joining the lockspace.',
                                 idempotent=True),
    'lockspace_leave': MethodSpec(doc='Leave the lockspace.'),
    'acquire_lease': MethodSpec({'pid': Param(int, required=True)},
                                doc='Acquire the workload lease for pid.'),
    'release_lease': MethodSpec({'pid': Param(int, required=True)},
                                doc='Release the workload lease of pid.'),
}


def dispatcher_for(broker: Broker) -> Dispatcher:
    """A dispatcher serving ``broker``."""
    return Dispatcher({
        name: Method(getattr(broker, name), spec.params, doc=spec.doc,
                     idempotent=spec.idempotent)
        for name, spec in METHODS.items()})
