"""What the local broker says, as a table or JSON (heartbeat-status
--broker)."""

from __future__ import annotations

import datetime
import json
import sys
from typing import Any

from oslo_config import cfg

from heartbeat.broker.client import BrokerClient
from heartbeat.broker.status import BrokerStatus
from heartbeat.broker.status import Peer
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
    lines.append(hosts_table(status))
    if fence.hosts:
        hosts = [('SANLOCK HOST', 'STATE', 'GENERATION')]
        for h in fence.hosts:
            hosts.append((str(h.host_id), h.state, str(h.generation)))
        lines += ['', cmd.format_table(hosts)]
    return '\n'.join(lines)


def agent_of(peer: Peer) -> dict[str, Any]:
    """What a host's agent published beside its state (may be empty)."""
    agent = peer.payload.get('agent')
    return agent if isinstance(agent, dict) else {}


def _workload(status: BrokerStatus, peer: Peer) -> str:
    agent = agent_of(peer)
    if peer.is_self and status.fencing.lease.held:
        return 'here, lease held by pid %s' % ', '.join(
            str(h.pid) for h in status.fencing.lease.holders)
    if agent.get('workload_running'):
        pid = agent.get('workload_pid')
        return 'here (pid %s)' % pid if pid else 'here'
    return '-'


def hosts_table(status: BrokerStatus) -> str:
    """One row per host: liveness, agent state, score, workload, reason."""
    rows = [('MEMBER', 'HOST ID', 'STATUS', 'AGENT STATE', 'SCORE',
             'MAINTENANCE', 'WORKLOAD', 'AGE', 'LAST TRANSITION')]
    for p in status.peers.members:
        rows.append((p.member_id + (' (self)' if p.is_self else ''),
                     _fmt(p.host_id), p.status, p.state or '-',
                     _fmt(p.score), p.maintenance, _workload(status, p),
                     _fmt(p.last_change_age_s, 's'), _last_transition(p)))
    return cmd.format_table(rows)


def _last_transition(peer: Peer) -> str:
    recent = agent_of(peer).get('history') or []
    last = recent[0] if recent and isinstance(recent[0], dict) else None
    if last is None:
        return '-'
    return '%s -> %s: %s' % (last.get('old'), last.get('new'),
                             last.get('reason'))


def history(status: BrokerStatus) -> list[dict[str, Any]]:
    """The recent transitions of every host, newest first."""
    out = []
    for p in status.peers.members:
        for t in agent_of(p).get('history') or []:
            if isinstance(t, dict):
                out.append({'member_id': p.member_id, 'host_id': p.host_id,
                            'wall': t.get('wall'), 'old': t.get('old'),
                            'new': t.get('new'), 'reason': t.get('reason')})
    out.sort(key=lambda t: t['wall'] if isinstance(
        t['wall'], (int, float)) else 0.0, reverse=True)
    return out


def history_table(rows: list[dict[str, Any]]) -> str:
    table = [('TIME', 'MEMBER', 'FROM', 'TO', 'REASON')]
    for t in rows:
        wall = t['wall']
        when = (datetime.datetime.fromtimestamp(
            wall, tz=datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%SZ')
            if isinstance(wall, (int, float)) else '-')
        table.append((when, str(t['member_id']), str(t['old']),
                      str(t['new']), str(t['reason'])))
    return cmd.format_table(table)


def _global(status: BrokerStatus) -> str:
    maint = status.maintenance
    if not maint.global_supported:
        return 'not supported by the %s driver' % status.storage.driver
    text = maint.global_mode or 'unknown'
    if maint.global_pending:
        text += ' (%s requested, not yet written)' % maint.global_pending
    return text


def show(conf: cfg.ConfigOpts, as_json: bool,
         transitions: bool = False) -> int:
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
    if transitions:
        rows = history(status)
        print(json.dumps(rows, indent=2) if as_json else history_table(rows))
    elif as_json:
        print(json.dumps(status.to_dict(), indent=2, sort_keys=True))
    else:
        print(render(status))
    return 0
