"""The lease-holder launcher's line protocol, with real processes."""

import os
import signal
import subprocess
import time

import pytest

from heartbeat.workload.errors import WorkloadError
from heartbeat.workload import holder
from heartbeat.workload import procs


def stand_in(*argv):
    """A process in the launcher's place, speaking (or not) the protocol."""
    return subprocess.Popen(list(argv), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=0,
                            start_new_session=True)


def test_go_returns_once_the_command_runs_in_the_launcher(tmp_path):
    marker = tmp_path / 'ran'
    work = holder.spawn(['sh', '-c', 'echo $$ > %s' % marker],
                        register=False)
    assert not marker.exists()
    work.go()
    assert work.proc.wait(10) == 0
    # Same pid: the process sanlock knows is the workload itself.
    assert int(marker.read_text()) == work.pid


def test_end_of_file_instead_of_go_never_runs_the_command(tmp_path):
    marker = tmp_path / 'ran'
    work = holder.spawn(['touch', str(marker)], register=False)
    assert work.abort() == holder.NOT_STARTED
    assert not marker.exists()


def test_a_command_that_cannot_run_is_an_error_at_go(tmp_path):
    work = holder.spawn([str(tmp_path / 'missing')], register=False,
                        stderr=subprocess.DEVNULL)
    with pytest.raises(WorkloadError, match=r'cannot run .*missing'):
        work.go()
    assert work.proc.returncode == holder.EXEC_FAILED


def test_a_registration_failure_says_why_in_one_line(tmp_path):
    with pytest.raises(WorkloadError, match='sanlock') as info:
        holder.spawn(['true'], sanlock_run_dir=str(tmp_path),
                     stderr=subprocess.DEVNULL)
    assert '\n' not in str(info.value)


def test_a_silent_launcher_is_killed_after_the_timeout():
    proc = stand_in('sleep', '30')
    start = time.monotonic()
    with pytest.raises(WorkloadError, match='did not say ready within'):
        holder.HolderProcess(proc, timeout=0.3)
    assert time.monotonic() - start < 5
    assert proc.returncode == -9
    assert not procs.pid_alive(proc.pid)


def test_a_launcher_that_says_something_else_is_refused():
    proc = stand_in('echo', 'hello')
    with pytest.raises(WorkloadError, match="said 'hello'"):
        holder.HolderProcess(proc, timeout=5)
    assert proc.returncode is not None


def test_go_to_a_launcher_that_went_away_is_an_error():
    work = holder.spawn(['true'], register=False)
    os.kill(work.pid, 9)
    work.proc.wait(5)
    with pytest.raises(WorkloadError):
        work.go()


def test_the_workload_does_not_inherit_ignored_sigpipe(tmp_path):
    # Python ignores SIGPIPE and ignored signals survive exec: the launcher
    # must give the workload the default back.
    out = tmp_path / 'status'
    work = holder.spawn(['sh', '-c', 'cat /proc/self/status > %s' % out],
                        register=False)
    work.go()
    assert work.proc.wait(10) == 0
    ignored = next(int(line.split()[1], 16)
                   for line in out.read_text().splitlines()
                   if line.startswith('SigIgn:'))
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_stdin_is_dev_null_after_go(tmp_path):
    out = tmp_path / 'stdin'
    work = holder.spawn(['sh', '-c', 'readlink /proc/self/fd/0 > %s' % out],
                        register=False)
    work.go()
    assert work.proc.wait(10) == 0
    assert out.read_text().strip() == os.devnull
