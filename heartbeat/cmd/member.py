"""heartbeat-member: a standalone member that joins a group and reports.

A sidecar for programs that are not oslo daemons: it reports the given
state every report_interval until SIGTERM or SIGINT, then leaves cleanly.
``--state-file`` lets the program beside it change the reported state by
rewriting a file.

A member that can no longer publish (its backend refuses every write, or
its storage slot was wiped or taken by another writer) does not pretend:
after ``--max-failures`` reports in a row failed it exits with status 1,
so that its supervisor restarts it (or an operator sees why).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from oslo_config import cfg

from heartbeat import cmd
from heartbeat import reporter
from heartbeat.service import notify
from heartbeat import servicegroup

PROG = 'heartbeat-member'

CLI_OPTS = [
    cfg.StrOpt('member-id',
               help='Member name (default: [heartbeat] member_id, then '
                    '[heartbeat] host).'),
    cfg.StrOpt('group', required=True, help='Group to join.'),
    cfg.StrOpt('state', help='State to report.'),
    cfg.StrOpt('state-file',
               help='File whose first line is the state to report, read on '
                    'every beat (overrides --state while it exists).'),
    cfg.IntOpt('host-id', min=1, max=2000,
               help='Overrides [heartbeat] host_id (the storage slot).'),
    cfg.BoolOpt('json', default=False,
                help='Say that the member joined as one JSON object (member, '
                     'group, driver, host_id, pid) instead of a sentence.'),
    cfg.IntOpt('max-failures', default=10, min=0,
               help='Exit with status 1 after this many reports in a row '
                    'failed, so that a supervisor restarts the member; 0 '
                    'keeps retrying for ever.'),
]

#: Exit status of a member that gave up publishing.
EXIT_CANNOT_PUBLISH = 1


def _state_reader(conf: cfg.ConfigOpts) -> Any:
    fixed: str | None = conf.state
    path = conf.state_file

    def state() -> str | None:
        if path:
            try:
                with open(path, encoding='utf-8') as f:
                    return f.readline().strip() or fixed
            except FileNotFoundError:
                return fixed
        return fixed
    return state


def _turning(rep: reporter.Reporter) -> notify.Check:
    """A watchdog check: the report task keeps beating (or failing).

    Failed reports are progress too (``--max-failures`` deals with them);
    a task that does neither for ten report intervals, and at least a
    minute, is hung.
    """
    seen = [-1, time.monotonic()]

    def check() -> str | None:
        c = rep.counters
        done = c.beats + c.failures
        now = time.monotonic()
        if done != seen[0]:
            seen[0], seen[1] = done, now
            return None
        limit = max(60.0, 10 * rep.interval)
        if now - seen[1] > limit:
            return 'no report attempted for %.0fs' % (now - seen[1])
        return None
    return check


def _gave_up(counters: reporter.Counters, limit: int, member_id: str,
             group: str) -> bool:
    """Whether ``limit`` reports in a row failed (said on stderr)."""
    if not limit or counters.consecutive_failures < limit:
        return False
    sys.stderr.write(
        '%s: %s/%s: the last %d reports failed (%d failures since start), '
        'giving up so that a supervisor can restart the member: %s\n'
        % (PROG, group, member_id, counters.consecutive_failures,
           counters.failures, counters.last_error))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()
    stop = threading.Event()

    def body() -> int:
        conf = cmd.make_conf(argv, CLI_OPTS, __doc__ or '')
        if conf.host_id is not None:
            conf.set_override('host_id', conf.host_id, group='heartbeat')
        member_id = (conf.member_id or conf.heartbeat.member_id
                     or conf.heartbeat.host)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        sg = servicegroup.API(conf)
        try:
            rep = sg.join(member_id, conf.group, state_cb=_state_reader(conf))
            if conf.json:
                print(json.dumps({
                    'event': 'joined', 'member_id': member_id,
                    'group': conf.group, 'driver': conf.heartbeat.driver,
                    'host_id': conf.heartbeat.host_id, 'pid': os.getpid(),
                    'report_interval': conf.heartbeat.report_interval},
                    sort_keys=True), flush=True)
            else:
                print('%s: %s joined %s' % (PROG, member_id, conf.group),
                      flush=True)
            notify.notify('READY=1', 'STATUS=reporting %s/%s'
                          % (conf.group, member_id))
            watchdog = notify.Watchdog(_turning(rep))
            watchdog.start()
            tick = min(1.0, conf.heartbeat.report_interval / 2)
            try:
                while not stop.wait(tick):
                    if _gave_up(rep.counters, conf.max_failures, member_id,
                                conf.group):
                        return EXIT_CANNOT_PUBLISH
            finally:
                watchdog.stop()
                notify.notify('STOPPING=1')
        finally:
            sg.close()
        return 0

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
