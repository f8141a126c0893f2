"""What the local broker says, as a table or JSON (heartbeat-status
--broker)."""

from __future__ import annotations

import json
import sys
from typing import Any

from oslo_config import cfg

from heartbeat.broker.client import BrokerClient
from heartbeat.broker.status import BrokerStatus
from heartbeat import cmd
from heartbeat.conf import broker as broker_conf
from heartbeat import exception


def _fmt(value: Any, unit: str = '') -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return '%.3f%s' % (value, unit)
    return '%s%s' % (value, unit)


def render(status: BrokerStatus) -> str:
    """A human-readable view of a broker's status."""
    own = status.own
    writer = status.writer
    domain = status.domain
    fence = status.fencing
    lockspace = fence.lockspace
    lease = fence.lease
    storage = status.storage
    lines = [
        'broker of %s (host_id %s, member %s/%s, pid %s)' % (
            status.host.host, status.host.host_id, own.group, own.member_id,
            status.host.pid),
        'own state:   %s  score %s  local maintenance %s  global '
        'maintenance %s' % (own.state or '-', _fmt(own.score),
                            'on' if own.local_maintenance else 'off',
                            _global(status)),
        'storage:     %s  %s via %s/%s  stale %ss  writes %d  failures %d%s'
        % ('STALLED' if writer.stalled else
           ('ok' if writer.healthy else 'not connected'),
           storage.path, storage.driver, storage.connection,
           _fmt(writer.stale_s), writer.writes, writer.failures,
           '  last error: %s' % writer.last_error
           if writer.last_error else ''),
        'domain:      monitor %s  valid %s  delay %s%s' % (
            domain.monitor, domain.valid, _fmt(domain.delay_s, 's'),
            '  (%s)' % domain.error if domain.error else ''),
        'fencing:     %s%s  lockspace %s%s  lease %s' % (
            fence.fencer, '' if fence.safe else ' (UNSAFE)',
            lockspace.state,
            ' (%s)' % lockspace.error if lockspace.error else '',
            'held by pid %s' % ', '.join(
                '%d%s' % (h.pid, ' (recovered)' if h.recovered else '')
                for h in lease.holders)
            if lease.held else 'not held'),
        '',
    ]
    subs = [('SUBMONITOR', 'OK', 'VALUE', 'AGE', 'DETAIL')]
    for name, r in sorted(status.submonitors.items()):
        subs.append((name, _fmt(r.ok), _fmt(r.value), _fmt(r.age_s, 's'),
                     r.error or r.detail or ''))
    lines += [cmd.format_table(subs), '']
    peers = [('MEMBER', 'HOST ID', 'STATUS', 'STATE', 'SCORE', 'AGE',
              'MAINTENANCE')]
    for p in status.peers.members:
        peers.append((p.member_id + (' (self)' if p.is_self else ''),
                      _fmt(p.host_id), p.status, p.state or '-',
                      _fmt(p.score), _fmt(p.last_change_age_s, 's'),
                      p.maintenance))
    lines.append(cmd.format_table(peers))
    if fence.hosts:
        hosts = [('SANLOCK HOST', 'STATE', 'GENERATION')]
        for h in fence.hosts:
            hosts.append((str(h.host_id), h.state, str(h.generation)))
        lines += ['', cmd.format_table(hosts)]
    return '\n'.join(lines)


def _global(status: BrokerStatus) -> str:
    maint = status.maintenance
    if not maint.global_supported:
        return 'not supported by the %s driver' % status.storage.driver
    text = maint.global_mode or 'unknown'
    if maint.global_pending:
        text += ' (%s requested, not yet written)' % maint.global_pending
    return text


def show(conf: cfg.ConfigOpts, as_json: bool) -> int:
    """Print the local broker's status; 0 on success, 1 if unreachable."""
    broker_conf.register_opts(conf)
    client = BrokerClient(conf.broker.socket_path, conf.broker.call_timeout)
    try:
        status = client.get_status()
    except exception.HeartbeatError as err:
        print('heartbeat-status: cannot ask the broker: %s' % err,
              file=sys.stderr)
        return 1
    finally:
        client.close()
    if as_json:
        print(json.dumps(status.to_dict(), indent=2, sort_keys=True))
    else:
        print(render(status))
    return 0
