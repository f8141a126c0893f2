"""heartbeat-status: show every member of every group (or one group).

The observer reads the group several times during ``--settle`` seconds so
that it can see which members' reports change; a member it did not see
change in that window is shown as ``unknown`` (``"up": null`` in JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import sys
import time
from typing import Any

from oslo_config import cfg

from heartbeat import cmd
from heartbeat.model import Member
from heartbeat.model import Status
from heartbeat import servicegroup

PROG = 'heartbeat-status'

CLI_OPTS = [
    cfg.StrOpt('group', help='Only show this group.'),
    cfg.BoolOpt('json', default=False,
                help='Print a JSON list of members instead of a table.'),
    cfg.FloatOpt('settle', min=0.0,
                 help='Seconds to watch reports change before answering '
                      '(default: 1.5 x report_interval; 0 answers at once).'),
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


def table(members: Sequence[Member]) -> str:
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
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join(
        '  '.join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows)


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


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()

    def body() -> int:
        conf = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        settle = conf.settle
        if settle is None:
            settle = 1.5 * conf.heartbeat.report_interval
        with servicegroup.API(conf) as sg:
            members = observe(sg, conf.group, settle)
        if conf.json:
            print(json.dumps([member_dict(m) for m in members], indent=2))
        else:
            print(table(members))
        return 0

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
