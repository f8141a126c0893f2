"""The broker's RPC methods: names, parameters, and the Broker calls."""

from __future__ import annotations

from heartbeat.broker.core import Broker
from heartbeat.broker.dispatcher import Dispatcher
from heartbeat.broker.dispatcher import Method
from heartbeat.broker.dispatcher import Param

NULLABLE_STR = (str, type(None))
NULLABLE_INT = (int, type(None))


def dispatcher_for(broker: Broker) -> Dispatcher:
    """A dispatcher serving ``broker``."""
    return Dispatcher({
        'ping': Method(broker.ping, doc='Liveness of the broker itself.'),
        'put_state': Method(broker.put_state, {
            'state': Param(NULLABLE_STR, required=True),
            'score': Param(NULLABLE_INT),
            'payload': Param(dict),
        }, doc='Post this host\'s state; written in the background.'),
        'get_status': Method(broker.get_status,
                             doc='Everything the broker knows, from memory.'),
        'start_domain_monitor': Method(broker.start_domain_monitor),
        'stop_domain_monitor': Method(broker.stop_domain_monitor),
        'set_maintenance': Method(broker.set_maintenance, {
            'mode': Param(str, required=True)}),
        'lockspace_join': Method(broker.lockspace_join),
        'lockspace_leave': Method(broker.lockspace_leave),
        'acquire_lease': Method(broker.acquire_lease, {
            'pid': Param(int, required=True)}),
        'release_lease': Method(broker.release_lease, {
            'pid': Param(int, required=True)}),
    })
