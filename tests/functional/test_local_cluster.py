"""heartbeat-local-cluster as a user runs it: real brokers, agents, faults.

Each scenario runs the command in a subprocess with --json and checks its
summary: the workload served again on another host (or, for a stall that
the flock fencer does not act on, kept serving) and never ran twice, which
the test checks again from the workload's own log in the kept work
directory.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from heartbeat.cluster import demo
from heartbeat.cluster import fuse
from heartbeat.cluster import sanlockd

pytestmark = [pytest.mark.broker]

#: Settings of the README's first command, made quick.
FAST = ('--interval', '0.2', '--down-time', '1.0', '--loop', '0.3')


def local_cluster(*args, timeout=240, env=None):
    return subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.local_cluster', *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env=env)


def run_scenario(tmp_path, name, *args, timeout=240):
    workdir = str(tmp_path / 'c')
    proc = local_cluster('--scenario', name, '--json', '--workdir', workdir,
                         *args, timeout=timeout)
    assert proc.stdout, proc.stderr
    summary = json.loads(proc.stdout)
    return proc, summary, workdir


def assert_moved(proc, summary, workdir, within):
    assert proc.returncode == 0, (summary, proc.stderr[-3000:])
    assert summary['ok'] and summary['error'] is None
    assert summary['new_host'] not in (None, summary['fault_host'])
    assert 0 < summary['serving_again_s'] < within, summary
    assert summary['serving_at_end'] == summary['new_host']
    # The command's verdict, and again from the workload's own log.
    assert summary['never_two'] and summary['overlaps'] == []
    runs = demo.intervals(os.path.join(workdir, 'ticks.log'))
    assert {r.host for r in runs} >= {summary['fault_host'],
                                      summary['new_host']}
    assert demo.overlaps(runs) == []


def test_failover_flock_serves_again_elsewhere_and_never_twice(tmp_path):
    proc, summary, workdir = run_scenario(tmp_path, 'failover', *FAST)
    # Detection (service_down_time 1 s) + a few loops + the start.
    assert_moved(proc, summary, workdir, within=10.0)
    assert summary['fencing'] == 'flock' and summary['hosts'] == 3
    events = [e['text'] for e in summary['events']]
    assert any(t.startswith('fault: kill -9 every process of ')
               for t in events), events
    # The kept work directory still answers the commands it printed.
    status = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.status', '--config-file',
         summary['config'], '--json', '--quick'],
        capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode in (0, 1), status.stderr
    assert len(json.loads(status.stdout)) == 3


def test_maintenance_moves_the_workload_and_the_host_comes_back(tmp_path):
    proc, summary, workdir = run_scenario(tmp_path, 'maintenance', *FAST)
    assert_moved(proc, summary, workdir, within=15.0)
    events = [e['text'] for e in summary['events']]
    assert events[-1].startswith('%s back in the cluster'
                                 % summary['fault_host']), events


def test_degrade_moves_the_workload_to_a_better_host(tmp_path):
    proc, summary, workdir = run_scenario(tmp_path, 'degrade', *FAST)
    # migrate_after (3) loops of a worse score, then stop and start.
    assert_moved(proc, summary, workdir, within=20.0)
    events = [e['text'] for e in summary['events']]
    assert 'gateway of %s restored' % summary['fault_host'] in events


@pytest.mark.fuse
def test_storage_stall_with_flock_keeps_the_workload_where_it_is(tmp_path):
    if fuse.missing():
        pytest.fail(fuse.missing())
    proc, summary, workdir = run_scenario(tmp_path, 'storage-stall', *FAST,
                                          '--stall-for', '8')
    assert proc.returncode == 0, (summary, proc.stderr[-3000:])
    # flock fences nobody: the stalled host keeps the lock and the
    # workload, and no other host can start it meanwhile.
    assert summary['kept_running'] and summary['new_host'] is None
    assert summary['serving_at_end'] == summary['fault_host']
    assert summary['never_two']
    runs = demo.intervals(os.path.join(workdir, 'ticks.log'))
    assert len({(r.host, r.pid) for r in runs}) == 1, runs


@pytest.mark.sanlock
def test_failover_sanlock_waits_for_the_host_to_be_declared_dead(tmp_path):
    proc, summary, workdir = run_scenario(
        tmp_path, 'failover', *FAST, '--fencing', 'sanlock', timeout=420)
    # sanlock declares a killed host dead after 8 x io_timeout + 60 s.
    assert_moved(proc, summary, workdir, within=200.0)
    assert summary['serving_again_s'] > 60.0, summary
    assert summary['fencing'] == 'sanlock'


def test_a_temporary_workdir_is_removed_and_the_text_summary_says_ok():
    proc = local_cluster('--scenario', 'failover', *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert 'never two: ok' in proc.stdout
    assert '-> serving on host-' in proc.stdout
    workdir = proc.stdout.split('work directory ', 1)[1].split(';')[0]
    assert not os.path.exists(workdir)


@pytest.mark.parametrize('args,words', [
    (('--hosts', '0'), ('--hosts',)),
    (('--hosts', '20'), ('--hosts 20', '16 slots', '--slots')),
    (('--scenario', 'nap'), ('--scenario',)),
    (('--fencing', 'none'), ('--fencing',)),
    (('--down-time', '0.5', '--interval', '0.5'), ('--down-time',)),
    (('--down-time', '1.0', '--loop', '0.6'), ('--loop', '--down-time')),
    (('--workdir', '/tmp/' + 'x' * 120), ('--workdir', 'too long')),
])
def test_bad_input_is_one_line_exit_2(args, words):
    proc = local_cluster(*args, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_sanlock_fencing_without_sanlock_names_the_package(tmp_path):
    # A PATH without the sanlock daemon, as on a fresh machine.
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    os.symlink(sys.executable, bindir / 'python3')
    env = dict(os.environ, PATH=str(bindir))
    assert shutil.which('sanlock', path=str(bindir)) is None
    assert sanlockd.SANLOCK == 'sanlock'
    proc = local_cluster('--fencing', 'sanlock', '--scenario', 'failover',
                         timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert '\n' not in line
    assert 'apt-get install sanlock' in line
    assert 'tools/install-bindep.sh' in line
