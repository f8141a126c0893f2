"""heartbeat-storage: initialise, inspect and repair the shared metadata
area, and initialise the sanlock lockspace and resource lease
(sanlock-init).

``dump`` exits 1 while the global slot 0 cannot be used; it then shows the
host slots read with the configured geometry, what is wrong with slot 0,
and the command that repairs it (``repair-global``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import sys
import time
from typing import Any

from oslo_config import cfg

from heartbeat import cmd
from heartbeat.drivers.storage import admin
from heartbeat.drivers.storage import diagnosis

PROG = 'heartbeat-storage'

REPAIR_GLOBAL_HELP = (
    'Rewrite a damaged or wiped global slot 0 from [heartbeat_storage] '
    'slot_size and max_hosts, keeping every host slot: members may keep '
    'running. The cluster flags it held are lost (maintenance becomes none '
    'unless --maintenance says otherwise). Refuses when the host slots '
    'found do not fit the configured geometry; leaves an intact slot 0 '
    'alone. Unlike "init --force", no member has to rejoin.')


JSON_HELP = 'Print the result as one JSON object instead of a sentence.'


def _add_parsers(subparsers: object) -> None:
    def add(name: str, **kwargs: Any) -> Any:
        # Each option's default in its help, as for the top-level options.
        return subparsers.add_parser(  # type: ignore[attr-defined]
            name, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            **kwargs)

    sp = add(
        'init', help='Create or re-initialise the area at '
                     '[heartbeat_storage] path (refuses while members are '
                     'writing it).')
    sp.add_argument('--force', action='store_true',
                    help='Wipe the area even if members are writing it, '
                         'or its check cannot tell (unreadable, stalled).')
    sp.add_argument('--watch', type=float, default=None,
                    help='Seconds to watch host slots for changes before '
                         'wiping (default: twice report_interval).')
    sp.add_argument('--io-timeout', type=float, default=admin.IO_TIMEOUT,
                    help='Seconds one read of the area may take while '
                         'checking for live members; a slower or failing '
                         'read makes init refuse (nobody can tell).')
    sp.add_argument('--json', action='store_true', help=JSON_HELP)
    sp = add(
        'dump', help='Show the global slot and every host slot, valid or '
                     'not, and why not.')
    sp.add_argument('--all', action='store_true',
                    help='Also list empty slots.')
    sp.add_argument('--json', action='store_true',
                    help='Print JSON instead of a table.')
    sp = add(
        'repair-global', help=REPAIR_GLOBAL_HELP,
        description=REPAIR_GLOBAL_HELP)
    sp.add_argument('--maintenance', choices=('none', 'global'),
                    default='none',
                    help='The maintenance flag to write (default: none); '
                         'give "global" if the cluster was in global '
                         'maintenance.')
    sp.add_argument('--force', action='store_true',
                    help='Also rewrite a slot 0 that holds a record of a '
                         'newer format version (only when no host runs a '
                         'newer heartbeat, so the version field is damage).')
    sp.add_argument('--json', action='store_true', help=JSON_HELP)
    sp = add(
        'sanlock-init', help='Write the sanlock lockspace and the workload '
                             'resource lease into [fencing] lease_path '
                             '(through the local sanlock daemon).')
    sp.add_argument('--force', action='store_true',
                    help='Overwrite an initialised lockspace (every host '
                         'using it loses its leases).')
    sp.add_argument('--json', action='store_true', help=JSON_HELP)


CLI_OPTS = [cfg.SubCommandOpt('action', handler=_add_parsers,
                              title='Commands',
                              help='What to do with the metadata area.')]


def _dump(conf: cfg.ConfigOpts) -> int:
    """Print the area; 1 while slot 0 cannot be used, else 0."""
    dump = admin.inspect_area(conf, include_empty=conf.action.all)
    check = dump.check
    if conf.action.json:
        print(json.dumps({
            'global': dump.glob,
            'global_problem': (check.as_dict() if check.problem is not None
                               else None),
            'geometry': diagnosis.geometry_dict(check.geometry,
                                                check.geometry_source),
            'slots': [{'host_id': r.host_id, 'status': r.status, **r.detail}
                      for r in dump.rows]}, indent=2, sort_keys=True))
    else:
        glob = dump.glob
        if glob is None:
            print(check.summary().split('\n')[0])
        else:
            print('area %s: slot_size=%s max_hosts=%s maintenance=%s'
                  % (conf.heartbeat_storage.path, glob.get('slot_size'),
                     glob.get('max_hosts'), glob.get('maintenance')))
        print(cmd.format_table([('HOST_ID', 'STATUS', 'DETAIL'),
                                *(_dump_row(r) for r in dump.rows)]))
        if glob is None:
            print('repair: %s' % check.repair)
    return 0 if check.problem is None else 1


def _done(conf: cfg.ConfigOpts, message: str, **fields: Any) -> None:
    """Say what an action did: a sentence, or JSON with ``--json``."""
    if conf.action.json:
        print(json.dumps({'action': conf.action.name, 'ok': True,
                          'message': message, **fields}, sort_keys=True))
    else:
        print(message)


def _dump_row(r: admin.DumpRow) -> tuple[str, str, str]:
    if r.status == 'invalid':
        detail = r.detail['reason']
    elif r.status == 'empty':
        detail = ''
    else:
        d = r.detail
        detail = ('%s/%s seq=%d state=%s written=%s' % (
            d.get('group'), d.get('member_id'), d['seq'], d.get('state'),
            time.strftime('%Y-%m-%dT%H:%M:%SZ',
                          time.gmtime(d['timestamp']))))
    return (str(r.host_id), r.status, detail)


def main(argv: Sequence[str] | None = None) -> int:
    cmd.init_backend()

    def body() -> int:
        conf = cmd.make_conf(argv, CLI_OPTS, __doc__ or '', quiet=True)
        action = conf.action.name
        if action == 'sanlock-init':
            from heartbeat.conf import fencing as fencing_conf
            from heartbeat.fencing import sanlock

            fencing_conf.register_opts(conf)
            message = sanlock.init_areas(conf, force=conf.action.force)
            _done(conf, message, lease_path=conf.fencing.lease_path)
            return 0
        if action == 'init':
            message = admin.init_area(conf, force=conf.action.force,
                                      watch=conf.action.watch,
                                      io_timeout=conf.action.io_timeout)
        elif action == 'repair-global':
            message = diagnosis.repair_global(
                conf, maintenance=conf.action.maintenance,
                force=conf.action.force)
        else:
            return _dump(conf)
        opts = conf.heartbeat_storage
        _done(conf, message, path=opts.path, slot_size=opts.slot_size,
              max_hosts=opts.max_hosts)
        return 0

    return cmd.run(PROG, body)


if __name__ == '__main__':
    sys.exit(main())
