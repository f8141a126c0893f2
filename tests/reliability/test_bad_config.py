"""Twenty-odd kinds of bad configuration, each given to a real command.

Target (issue 10): exit status 2, one line on stderr that names the
option (or the file), no traceback, in under 10 s.
"""

from __future__ import annotations

from concurrent import futures
import os
import subprocess
import sys
import time
from typing import Any

from heartbeat.testing.broker import merged
from heartbeat.testing.broker import write_conf

TIME_LIMIT = 10.0
#: Commands run side by side (each is a Python start-up, CPU bound).
WORKERS = 3

#: A valid base every case breaks in one place.
BASE: dict[str, dict[str, Any]] = {
    'heartbeat': {'host_id': 1, 'report_interval': 0.2,
                  'service_down_time': 1.0},
    'fencing': {'fencer': 'none'},
    'agent': {'loop_interval': 0.2},
    'workload': {'command': 'sleep 100'},
}

# (id, command, sections to merge, extra argv, text the line must hold)
CASES: list[tuple[str, str, dict[str, dict[str, Any]], list[str], str]] = [
    ('negative report_interval', 'broker',
     {'heartbeat': {'report_interval': -1}}, [],
     '[heartbeat] report_interval'),
    ('report_interval not a number', 'broker',
     {'heartbeat': {'report_interval': 'fast'}}, [],
     '[heartbeat] report_interval'),
    ('service_down_time < 2 x report_interval', 'broker',
     {'heartbeat': {'service_down_time': 0.3}}, [],
     '[heartbeat] service_down_time'),
    ('host_id not an integer', 'broker', {'heartbeat': {'host_id': 'abc'}},
     [], '[heartbeat] host_id'),
    ('host_id out of range', 'broker', {'heartbeat': {'host_id': 5000}}, [],
     '[heartbeat] host_id'),
    ('unknown driver', 'broker', {'heartbeat': {'driver': 'nosuch'}}, [],
     '[heartbeat] driver'),
    ('unknown fencer', 'broker', {'fencing': {'fencer': 'nosuch'}}, [],
     '[fencing] fencer'),
    ('io_timeout 0', 'broker', {'fencing': {'io_timeout': 0}}, [],
     '[fencing] io_timeout'),
    ('sanlock fencer without lease_path', 'broker',
     {'fencing': {'fencer': 'sanlock', 'lease_path': ''}}, [],
     '[fencing] lease_path'),
    ('misspelt option (--strict-config)', 'broker',
     {'heartbeat': {'report_intervall': 3}}, ['--strict-config'],
     'report_intervall'),
    ('socket_path in a missing directory', 'broker',
     {'broker': {'socket_path': '/nonexistent/hb/b.sock'}}, [],
     '[broker] socket_path'),
    ('max_hosts 0', 'broker', {'heartbeat_storage': {'max_hosts': 0}}, [],
     '[heartbeat_storage] max_hosts'),
    ('slot_size not a sector multiple', 'broker',
     {'heartbeat_storage': {'slot_size': 1000}}, [],
     '[heartbeat_storage] slot_size'),
    ('unknown submonitor', 'broker',
     {'submonitors': {'enabled': 'network,nosuch'}}, [],
     '[submonitors] enabled'),
    ('unknown network_method', 'broker',
     {'submonitors': {'network_method': 'carrier-pigeon'}}, [],
     '[submonitors] network_method'),
    ('allowed_uids not integers', 'broker',
     {'broker': {'allowed_uids': 'root,abc'}}, [], '[broker] allowed_uids'),
    ('negative agent loop_interval', 'agent',
     {'agent': {'loop_interval': -5}}, [], '[agent] loop_interval'),
    ('empty workload command', 'agent', {'workload': {'command': ''}}, [],
     '[workload] command'),
    ('unknown stop_signal', 'agent', {'workload': {'stop_signal': 'NOPE'}},
     [], '[workload] stop_signal'),
    ('redis url of another scheme', 'status',
     {'heartbeat': {'driver': 'redis'},
      'heartbeat_redis': {'url': 'http://127.0.0.1:1'}}, [],
     '[heartbeat_redis] url'),
    ('tooz backend that cannot carry reports', 'status',
     {'heartbeat': {'driver': 'tooz'},
      'heartbeat_tooz': {'backend_url': 'file:///tmp/hb-tooz'}}, [],
     '[heartbeat_tooz] backend_url'),
]


def _run(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=TIME_LIMIT + 2, check=False)
    except subprocess.TimeoutExpired as err:
        out = err.stderr.decode() if isinstance(err.stderr, bytes) else ''
        proc = subprocess.CompletedProcess(argv, -9, '', out or '')
    return proc, time.monotonic() - start


def _setting(sections: dict[str, dict[str, Any]]) -> str:
    return '; '.join('[%s] %s = %s' % (group, key, value)
                     for group, values in sections.items()
                     for key, value in values.items())


def _check(name: str, done: str, argv: list[str],
           names: str) -> tuple[Any, ...]:
    """The row of one case: run it and judge its stderr."""
    proc, took = _run([sys.executable, '-W', 'ignore', '-m', *argv])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    first = lines[0] if lines else ''
    measured: dict[str, Any] = {
        'rc': proc.returncode, 'stderr_lines': len(lines),
        'names_option': names in first,
        'traceback': 'Traceback' in proc.stderr, 'seconds': round(took, 2)}
    if len(lines) != 1 or names not in first:
        measured['stderr'] = ' / '.join(lines)[:160]
    return ('config: %s' % name, '%s (must name %s)' % (done, names),
            measured, 'rc 2, 1 line naming it, no traceback, < %.0fs'
            % TIME_LIMIT,
            proc.returncode == 2 and len(lines) == 1 and names in first
            and not measured['traceback'] and took < TIME_LIMIT)


def _argv(tmp: str, command: str, sections: dict[str, dict[str, Any]],
          extra: list[str]) -> list[str]:
    os.makedirs(tmp)
    path = os.path.join(tmp, 'heartbeat.conf')
    write_conf(path, merged(BASE, {
        'heartbeat_storage': {'path': os.path.join(tmp, 'metadata')},
        'broker': {'socket_path': os.path.join(tmp, 'b.sock')},
        'agent': {'broker_socket': os.path.join(tmp, 'b.sock'),
                  'state_dir': tmp}}, sections))
    return ['heartbeat.cmd.%s' % command, '--config-file', path, *extra]


def test_bad_configuration(fault: Any, tmp_path: Any) -> None:
    """Every case at once, WORKERS at a time; one row each."""
    jobs = []
    for n, (name, command, sections, extra, names) in enumerate(CASES):
        argv = _argv(str(tmp_path / str(n)), command, sections, extra)
        done = 'heartbeat-%s %s%s' % (command, _setting(sections),
                                      ' ' + ' '.join(extra) if extra else '')
        jobs.append((name, done, argv, names))
    not_ini = tmp_path / 'not-ini.conf'
    not_ini.write_text('[heartbeat]\nthis is not ini\n', encoding='utf-8')
    jobs.append(('file is not ini', 'heartbeat-broker, a line without =',
                 ['heartbeat.cmd.broker', '--config-file', str(not_ini)],
                 'not-ini.conf:2'))
    missing = str(tmp_path / 'missing.conf')
    jobs.append(('config file missing', 'heartbeat-broker --config-file '
                 'missing.conf', ['heartbeat.cmd.broker', '--config-file',
                                  missing], 'missing.conf'))
    with futures.ThreadPoolExecutor(WORKERS) as pool:
        rows = list(pool.map(lambda job: _check(*job), jobs))
    for row in rows:
        fault.row(*row, check=False)
    fault.verify()
