"""heartbeat-status: show every member of every group (or one group).

The observer reads the group several times during ``--settle`` seconds so
that it can see which members' reports change; a member it did not see
change in that window is shown as ``unknown`` (``"up": null`` in JSON).

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
import signal
import sys
import threading
import time
from typing import Any
from typing import TYPE_CHECKING

from oslo_config import cfg

from heartbeat import cmd
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

CLI_OPTS = [
    cfg.StrOpt('group', help='Only show this group.'),
    cfg.BoolOpt('json', default=False,
                help='Print a JSON list of members instead of a table.'),
    cfg.FloatOpt('settle', min=0.0,
                 help='Seconds to watch reports change before answering '
                      '(default: 1.5 x report_interval; 0 answers at once).'),
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
        'payload': dict(m.report.payload),
    }


def table(members: Sequence[Member],
          invalid: Sequence[tuple[str, str]] = ()) -> str:
    """Members, then ``(location, reason)`` of records nobody accounts for."""
    rows = [('GROUP', 'MEMBER', 'STATUS', 'STATE', 'SCORE', 'SEQ', 'AGE',
             'WHERE')]
    for m in members:
        d = member_dict(m)
        age = d['last_change_age_s']
        status = d['status'] + (' (invalid: %s)' % m.invalid_reason
                                if m.invalid_reason else '')
        rows.append((m.group, m.member_id, status, str(d['state'] or '-'),
                     '-' if d['score'] is None else str(d['score']),
                     str(d['seq']), '-' if age is None else '%.1fs' % age,
                     d['location'] or '-'))
    rows.extend(('-', '-', 'invalid: %s' % reason, '-', '-', '-', '-', where)
                for where, reason in invalid)
    return cmd.format_table(rows)


def observe(sg: servicegroup.API, group: str | None,
            settle: float) -> list[Member]:
    """Read ``group`` until every member is judged or ``settle`` passes."""
    deadline = sg.clock() + settle
    step = max(0.05, min(0.5, settle / 10))
    members = sg.get_all(group)
    while sg.clock() < deadline and any(
            m.status is Status.UNKNOWN for m in members):
        time.sleep(step)
        members = sg.get_all(group)
    return members


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
    """Print one line per event of ``group`` until ``stop`` is set."""
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
            'location': location, 'invalid_reason': reason, 'payload': {}}


def unaccounted(snapshot: Snapshot, members: Sequence[Member]
                ) -> list[InvalidRecord]:
    """Unreadable records of ``snapshot`` at no member's location."""
    known = {m.report.location for m in members}
    return [rec for rec in snapshot.invalid if rec.location not in known]


def show(members: Sequence[Member], invalid: Sequence[InvalidRecord],
         area: GlobalCheck | None, as_json: bool) -> None:
    """Print members, then unreadable records (slot 0 first)."""
    extra = [invalid_dict(rec.location, rec.reason) for rec in invalid]
    if area is not None and area.problem is not None:
        extra.insert(0, dict(invalid_dict('slot 0', area.problem),
                             repair=area.repair,
                             geometry=area.as_dict()['geometry']))
    if as_json:
        print(json.dumps([*(member_dict(m) for m in members), *extra],
                         indent=2))
        return
    text = table(members, [(row['location'], row['invalid_reason'])
                           for row in extra])
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
        if settle is None:
            settle = 1.5 * conf.heartbeat.report_interval
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
            members = observe(sg, conf.group, settle)
            invalid = unaccounted(sg.driver.snapshot(conf.group), members)
        show(members, invalid, area, conf.json)
        return 1 if damaged else 0

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
