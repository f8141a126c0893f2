"""heartbeat-status: show every member of every group (or one group).

Liveness is judged by watching reports change, so a verdict takes time.
When a local heartbeat-broker runs and watches the group asked for, its
observer (which has the whole history) answers at once.  Otherwise the
command reads the group until every member is judged: a member that beats
is up within about one report_interval, a silent one is called down only
after service_down_time (a progress line on stderr says so).  ``--quick``
answers after 1.5 report_interval instead, showing members not seen
changing yet as ``unknown`` (``"up": null`` in JSON); ``--settle S``
watches for S seconds at most.  Exit status 1 when a member is down.

With ``--watch`` it streams events instead, one line each (JSON lines with
``--json``): first the current picture (``replay``), then every join, up,
down, leave and state change until interrupted.

Records that cannot be read are listed too, with the reason, as rows of
status ``invalid`` (``"member_id": null`` in JSON when no member they
belonged to is known).  With the storage driver, while the global slot 0
cannot be used (damaged, wiped, of a newer format), the host slots are
read with the configured geometry, slot 0 is one such row carrying the
``repair`` command (with ``--watch``: a message on stderr), and the
command exits 1.
"""

from __future__ import annotations

from collections.abc import Sequence
import datetime
import json
import os
import signal
import sys
import threading
import time
from typing import Any
from typing import TYPE_CHECKING

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat import cmd
from heartbeat.conf import broker as broker_conf
from heartbeat.model import Event
from heartbeat.model import InvalidRecord
from heartbeat.model import Member
from heartbeat.model import MemberDown
from heartbeat.model import MemberLeft
from heartbeat.model import MemberStateChanged
from heartbeat.model import Snapshot
from heartbeat.model import Status
from heartbeat import servicegroup

if TYPE_CHECKING:
    from heartbeat.drivers.storage.diagnosis import GlobalCheck

PROG = 'heartbeat-status'

LOG = logging.getLogger(__name__)

CLI_OPTS = [
    cfg.StrOpt('group', help='Only show this group.'),
    cfg.BoolOpt('json', default=False,
                help='Print a JSON list of members instead of a table.'),
    cfg.FloatOpt('settle', min=0.0,
                 help='Seconds to watch reports change at most before '
                      'answering (default: [heartbeat] service_down_time, '
                      'the time it takes to call a silent member down; '
                      'members seen changing are up at once).'),
    cfg.BoolOpt('quick', default=False,
                help='Answer after 1.5 x report_interval: members not seen '
                     'changing yet are shown as unknown, not judged.'),
    cfg.BoolOpt('watch', default=False,
                help='Stream events (joined, up, down, left, state_changed), '
                     'one line each, until interrupted; with --json, one '
                     'JSON object per line.'),
    cfg.BoolOpt('broker', default=False,
                help='Show what the local heartbeat-broker says (its own '
                     'status, peers, domain, lockspace and lease, writer '
                     'health) instead of reading the storage.'),
    cfg.BoolOpt('history', default=False,
                help='List the recent agent state transitions of every host '
                     '(with their reasons), newest first, as the local '
                     'heartbeat-broker sees them.'),
]


#: The keys of one row of the member list (JSON output).
ROW_KEYS = ('member_id', 'group', 'up', 'status', 'state', 'score', 'seq',
            'incarnation', 'last_change_age_s', 'location', 'invalid_reason',
            'payload')


def member_dict(m: Member) -> dict[str, Any]:
    known = m.status is not Status.UNKNOWN
    return {
        'member_id': m.member_id,
        'group': m.group,
        'up': (m.status is Status.UP) if known else None,
        'status': m.status.value,
        'state': m.report.state,
        'score': m.report.score,
        'seq': m.report.seq,
        'incarnation': m.report.incarnation,
        'last_change_age_s': round(m.last_change_age, 3) if known else None,
        'location': m.report.location,
        'invalid_reason': m.invalid_reason,
        'suspicion': (None if m.suspicion is None
                      else round(m.suspicion, 2)),
        'payload': dict(m.report.payload),
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Member rows (:func:`member_dict`, :func:`invalid_dict`) as text."""
    out = [('GROUP', 'MEMBER', 'STATUS', 'STATE', 'SCORE', 'SEQ', 'AGE',
            'WHERE')]
    for d in rows:
        age = d['last_change_age_s']
        if d['status'] == 'invalid':
            status = 'invalid: %s' % d['invalid_reason']
        else:
            status = d['status'] + (' (invalid: %s)' % d['invalid_reason']
                                    if d['invalid_reason'] else '')
        out.append((d['group'] or '-', d['member_id'] or '-', status,
                    str(d['state'] or '-'),
                    '-' if d['score'] is None else str(d['score']),
                    '-' if d['seq'] is None else str(d['seq']),
                    '-' if age is None else '%.1fs' % age,
                    d['location'] or '-'))
    return cmd.format_table(out)


def observe(sg: servicegroup.API, group: str | None,
            settle: float, progress: bool = False) -> list[Member]:
    """Read ``group`` until every member is judged or ``settle`` passes.

    With ``progress``, says once on stderr how long it may still watch
    when members are left to judge after the first report_interval.
    """
    start = sg.clock()
    deadline = start + settle
    step = max(0.05, min(0.5, settle / 10))
    told = not progress
    members = sg.get_all(group)
    while sg.clock() < deadline and any(
            m.status is Status.UNKNOWN for m in members):
        now = sg.clock()
        if not told and now - start >= sg.conf.heartbeat.report_interval:
            told = True
            waiting = sum(m.status is Status.UNKNOWN for m in members)
            print('%s: %d member(s) not seen changing yet; watching up to '
                  '%.0fs more before calling them down (service_down_time; '
                  '--quick answers now).' % (PROG, waiting, deadline - now),
                  file=sys.stderr, flush=True)
        time.sleep(step)
        members = sg.get_all(group)
    return members


def from_broker(conf: cfg.ConfigOpts, group: str | None,
                groups: set[str]) -> list[dict[str, Any]] | None:
    """Rows from the local broker's observer, if it watches what is asked.

    None when no broker answers on [broker] socket_path, or when it does
    not watch ``group`` (or, without one, every group in ``groups``).
    """
    from heartbeat.broker.client import BrokerClient
    from heartbeat.broker import status as broker_status
    from heartbeat import exception

    # Registered only now: until then conf.broker is the --broker flag.
    broker_conf.register_opts(conf)
    path = conf.broker.socket_path
    if not os.path.exists(path):
        return None
    client = BrokerClient(path, min(2.0, conf.broker.call_timeout))
    try:
        status = client.get_status()
    except exception.HeartbeatError as err:
        LOG.debug('No answer from the broker at %s (%s); observing the '
                  'group instead.', path, err)
        return None
    finally:
        client.close()
    own = status.own.group
    if (group is not None and group != own) or (
            group is None and not groups <= {own}):
        return None
    LOG.debug('Answered by the observer of the broker at %s (group %s, '
              'watching for %ss).', path, own, status.peers.observed_s)
    rows = []
    for peer in status.peers.members:
        row = broker_status.to_dict(peer)
        rows.append({key: row.get(key) for key in ROW_KEYS})
    return rows


def event_dict(e: Event) -> dict[str, Any]:
    """One event as a JSON-ready dict (one line of ``--watch --json``)."""
    out: dict[str, Any] = {
        'event': e.kind,
        'group': e.group,
        'member_id': e.member_id,
        'time': _iso(e.observed_wall),
        'replay': e.replay,
        'state': e.report.state,
        'score': e.report.score,
        'seq': e.report.seq,
        'incarnation': e.report.incarnation,
        'location': e.report.location,
    }
    if isinstance(e, MemberDown):
        out['reason'] = e.reason
    elif isinstance(e, MemberLeft):
        out['clean'] = e.clean
    elif isinstance(e, MemberStateChanged):
        out['old_state'] = e.old_state
        out['new_state'] = e.new_state
    return out


def event_line(e: Event) -> str:
    """One event as a line of text."""
    parts = [_iso(e.observed_wall), '%s/%s' % (e.group, e.member_id),
             e.kind]
    if isinstance(e, MemberStateChanged):
        parts.append('%s -> %s' % (e.old_state or '-', e.new_state or '-'))
    else:
        parts.append('state=%s' % (e.report.state or '-'))
    if isinstance(e, MemberDown):
        parts.append('(%s)' % e.reason)
    elif isinstance(e, MemberLeft) and not e.clean:
        parts.append('(record gone)')
    if e.replay:
        parts.append('[current]')
    return '  '.join(parts)


def _iso(wall: float) -> str:
    stamp = datetime.datetime.fromtimestamp(wall, tz=datetime.timezone.utc)
    return stamp.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def watch(sg: servicegroup.API, group: str | None, as_json: bool,
          stop: threading.Event) -> None:
    """Print one line per event of ``group`` until ``stop`` is set.

    A backend that cannot be read fails here, at once (watch() itself
    would wait for it).
    """
    sg.refresh(group)
    sub = sg.watch(group)
    try:
        while not stop.is_set():
            event = sub.get(timeout=0.2)
            if event is None:
                continue
            line = (json.dumps(event_dict(event), sort_keys=True)
                    if as_json else event_line(event))
            print(line, flush=True)
    finally:
        sub.cancel()


def invalid_dict(location: str, reason: str) -> dict[str, Any]:
    """A row for an unreadable record that no known member accounts for."""
    return {'member_id': None, 'group': None, 'up': None,
            'status': 'invalid', 'state': None, 'score': None, 'seq': None,
            'incarnation': None, 'last_change_age_s': None,
            'location': location, 'invalid_reason': reason,
            'suspicion': None, 'payload': {}}


def unaccounted(snapshot: Snapshot, members: Sequence[Member]
                ) -> list[InvalidRecord]:
    """Records of ``snapshot`` no member row accounts for, with why.

    Unreadable records at no member's location, and reports of a member id
    that another location holds too (two writers configured with the same
    id): each is a row of its own, never dropped.
    """
    known = {m.report.location for m in members}
    keys = {(m.group, m.member_id) for m in members}
    out = [rec for rec in snapshot.invalid
           if (rec.key not in keys if rec.key is not None
               else rec.location not in known)]
    where = {(m.group, m.member_id): m.report.location for m in members}
    for report in snapshot.reports:
        shown = where.get((report.group, report.member_id))
        if shown is not None and report.location != shown:
            out.append(InvalidRecord(
                report.location or '-',
                'duplicate member id %s/%s (also in %s); each member id may '
                'be written by one process' % (report.group,
                                               report.member_id, shown)))
    return out


def show(rows: Sequence[dict[str, Any]], invalid: Sequence[InvalidRecord],
         area: GlobalCheck | None, as_json: bool) -> None:
    """Print member rows, then unreadable records (slot 0 first)."""
    extra = [invalid_dict(rec.location, rec.reason) for rec in invalid]
    if area is not None and area.problem is not None:
        extra.insert(0, dict(invalid_dict('slot 0', area.problem),
                             repair=area.repair,
                             geometry=area.as_dict()['geometry']))
    if as_json:
        print(json.dumps([*rows, *extra], indent=2))
        return
    text = table([*rows, *extra])
    if area is not None and area.problem is not None:
        text += '\n' + area.summary()
    print(text)


def _storage_check(conf: cfg.ConfigOpts) -> GlobalCheck | None:
    """Slot 0 of the storage driver's area (None for other drivers)."""
    if conf.heartbeat.driver != 'storage':
        return None
    from heartbeat.drivers.storage import diagnosis

    return diagnosis.inspect(conf)


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()

    def body() -> int:
        conf = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        if conf.broker or conf.history:
            from heartbeat.cmd import broker_status

            return broker_status.show(conf, conf.json, conf.history)
        settle = conf.settle
        if conf.quick:
            settle = 1.5 * conf.heartbeat.report_interval
        elif settle is None:
            settle = conf.heartbeat.service_down_time
        area = _storage_check(conf)
        damaged = area is not None and area.problem is not None
        driver = None
        if damaged:
            from heartbeat.drivers.storage import diagnosis

            driver = diagnosis.HostSlotsObserver(conf)
        if conf.watch:
            if area is not None and area.problem is not None:
                print('%s: %s' % (PROG, area.summary()), file=sys.stderr)
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            with servicegroup.API(conf, driver=driver) as sg:
                watch(sg, conf.group, conf.json, stop)
            return 1 if damaged else 0
        with servicegroup.API(conf, driver=driver) as sg:
            sg.refresh(conf.group)   # connects, and the first read
            first = sg.driver.snapshot(conf.group)
            rows = None
            if not conf.quick and conf.settle is None:
                rows = from_broker(conf, conf.group,
                                   {r.group for r in first.reports})
            if rows is None:
                members = observe(sg, conf.group, settle,
                                  progress=not conf.quick)
                rows = [member_dict(m) for m in members]
                invalid = unaccounted(sg.driver.snapshot(conf.group),
                                      members)
            else:
                invalid = [rec for rec in first.invalid if rec.location
                           not in {r['location'] for r in rows}]
        show(rows, invalid, area, conf.json)
        down = any(r['status'] == Status.DOWN.value for r in rows)
        return 1 if damaged or down else 0

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
