"""heartbeat-maintenance: put this host or the whole cluster into
maintenance, or take it out, through the local heartbeat-broker.

``--mode local``: the agent of this host stops the workload (another host
takes it), stops the domain monitor and publishes score 0.  ``--mode
global``: every agent of the cluster hands off (nothing is started or
stopped; a running workload keeps running).  ``--mode none`` clears both.
Without --mode, shows the current maintenance.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import sys
from typing import Any

from oslo_config import cfg

from heartbeat.broker.client import BrokerClient
from heartbeat.broker import status as status_mod
from heartbeat import cmd
from heartbeat.conf import broker as broker_conf

PROG = 'heartbeat-maintenance'

CLI_OPTS = [
    cfg.StrOpt('mode', choices=[
        (status_mod.MAINTENANCE_LOCAL, 'this host'),
        (status_mod.MAINTENANCE_GLOBAL, 'the whole cluster'),
        (status_mod.MAINTENANCE_NONE, 'clear local and global')],
        help='Maintenance to set; without it, show the current one.'),
    cfg.BoolOpt('json', default=False,
                help='Print the result as one JSON object.'),
]


def describe(status: status_mod.BrokerStatus) -> dict[str, Any]:
    """What a maintenance answer reports, as plain data."""
    maint = status.maintenance
    return {'host': status.host.host, 'host_id': status.host.host_id,
            'local': maint.local, 'global': maint.global_mode,
            'global_pending': maint.global_pending,
            'global_supported': maint.global_supported,
            'agent_state': status.own.state}


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        conf = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        broker_conf.register_opts(conf)
        with BrokerClient(conf.broker.socket_path,
                          conf.broker.call_timeout) as client:
            if conf.mode:
                client.set_maintenance(conf.mode)
            out = describe(client.get_status())
        if conf.mode:
            out['requested'] = conf.mode
        if conf.json:
            print(json.dumps(out, sort_keys=True))
        else:
            print('%s (host_id %s): local maintenance %s, global '
                  'maintenance %s%s' % (
                      out['host'], out['host_id'],
                      'on' if out['local'] else 'off',
                      out['global'] or 'unknown',
                      ' (%s requested, not yet written)'
                      % out['global_pending'] if out['global_pending']
                      else ''))
        return 0

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
