"""WorkloadProcess with real processes (register=False: no sanlock)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from heartbeat.testing.waiting import wait_for
from heartbeat.workload.errors import WorkloadError
from heartbeat.workload.process import Identity
from heartbeat.workload.process import WorkloadProcess
from heartbeat.workload import procs


@pytest.fixture
def started():
    """Make workloads in a test; kill whatever still runs at the end."""
    made = []

    def make(command, state_dir, **kwargs):
        work = WorkloadProcess(command, str(state_dir), register=False,
                               **kwargs)
        made.append(work)
        return work

    yield make
    for work in made:
        if work.identity is not None:
            work.kill()
            work.wait(5)


def go(work):
    return work.spawn().go()


def test_spawn_then_go_runs_and_records_the_workload(started, tmp_path):
    work = started(['sleep', '30'], tmp_path)
    pending = work.spawn()
    assert not os.path.exists(work.pid_path)
    identity = pending.go()
    assert identity.pid == pending.pid
    assert identity.command == ('sleep', '30')
    assert identity.start_time == procs.start_time(identity.pid)
    assert work.identity == identity and work.running()
    with open(work.pid_path, encoding='utf-8') as f:
        assert Identity.from_dict(json.load(f)) == identity
    # Its own session and process group, away from the starter's.
    assert os.getsid(identity.pid) == identity.pid
    assert os.getpgid(identity.pid) == identity.pid
    assert os.getpgid(identity.pid) != os.getpgid(0)


def test_abort_never_runs_the_command(started, tmp_path):
    marker = tmp_path / 'ran'
    work = started(['touch', str(marker)], tmp_path)
    pending = work.spawn()
    pending.abort()
    assert not marker.exists()
    assert work.identity is None and not work.running()
    assert not os.path.exists(work.pid_path)
    with pytest.raises(WorkloadError, match='already'):
        pending.go()


def test_a_missing_command_is_an_error_before_anything_starts(started,
                                                              tmp_path):
    work = started(['no-such-workload-command'], tmp_path)
    with pytest.raises(WorkloadError, match='not found on PATH') as info:
        work.spawn()
    assert '\n' not in str(info.value)
    assert not os.path.exists(work.pid_path)


def test_a_path_that_is_not_executable_is_an_error(started, tmp_path):
    script = tmp_path / 'script'
    script.write_text('#!/bin/sh\n')
    work = started([str(script)], tmp_path)
    with pytest.raises(WorkloadError, match='not an executable file'):
        work.spawn()


def test_an_empty_command_is_refused(tmp_path):
    with pytest.raises(WorkloadError, match='empty'):
        WorkloadProcess([], str(tmp_path))


def test_an_exit_is_seen_and_reaped(started, tmp_path):
    work = started(['sh', '-c', 'exit 7'], tmp_path)
    identity = go(work)
    assert work.wait(10)
    assert work.exit_status == 7
    # Reaped: no zombie left behind.
    assert procs.start_time(identity.pid) is None
    work.forget()
    assert work.identity is None and not os.path.exists(work.pid_path)


def test_a_new_object_adopts_the_running_workload(started, tmp_path):
    identity = go(started(['sleep', '30'], tmp_path))
    again = started(['sleep', '30'], tmp_path)
    assert again.identity is None
    assert again.adopt() == identity
    assert again.identity == identity and again.running()
    assert again.exit_status is None


def test_spawn_refuses_while_a_recorded_workload_runs(started, tmp_path):
    identity = go(started(['sleep', '30'], tmp_path))
    with pytest.raises(WorkloadError, match='already runs as pid %d'
                       % identity.pid):
        started(['sleep', '30'], tmp_path).spawn()


def write_pid_file(work, pid, start_time):
    os.makedirs(work.state_dir, exist_ok=True)
    with open(work.pid_path, 'w', encoding='utf-8') as f:
        json.dump({'version': 1, 'pid': pid, 'start_time': start_time,
                   'command': list(work.command)}, f)


def test_a_pid_file_of_a_process_that_has_gone_is_removed(started,
                                                          tmp_path):
    work = started(['sleep', '30'], tmp_path)
    gone = subprocess.Popen(['true'])
    gone.wait()
    write_pid_file(work, gone.pid, 12345)
    assert work.adopt() is None
    assert not os.path.exists(work.pid_path)


def test_a_reused_pid_is_neither_adopted_nor_signalled(started, tmp_path):
    work = started(['sleep', '30'], tmp_path)
    # A live process in its own group, but started at another time than
    # the pid file says: the pid has been reused.
    other = subprocess.Popen(['sleep', '30'], start_new_session=True)
    try:
        write_pid_file(work, other.pid, procs.start_time(other.pid) - 1)
        assert work.adopt() is None
        assert not os.path.exists(work.pid_path)
        work._identity = Identity(other.pid, 1, work.command)
        work.kill()
        work.stop()
        assert other.poll() is None
        assert not work.running()
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize('content', ['not json', '{"version": 99}',
                                     '{"version": 1, "pid": "x"}'])
def test_an_unreadable_pid_file_is_removed(started, tmp_path, content):
    work = started(['sleep', '30'], tmp_path)
    with open(work.pid_path, 'w', encoding='utf-8') as f:
        f.write(content)
    assert work.adopt() is None
    assert not os.path.exists(work.pid_path)


def test_forget_refuses_a_running_workload(started, tmp_path):
    work = started(['sleep', '30'], tmp_path)
    go(work)
    with pytest.raises(WorkloadError, match='still runs'):
        work.forget()
    assert os.path.exists(work.pid_path)


def group_script(child_pid_file, trap=''):
    return ['sh', '-c', "%s sleep 30 & echo $! > %s; wait"
            % (trap, child_pid_file)]


def test_stop_signals_the_whole_process_group(started, tmp_path):
    child_file = tmp_path / 'child'
    work = started(group_script(child_file), tmp_path)
    go(work)
    child = wait_for(lambda: child_file.exists()
                     and child_file.read_text().strip())
    assert procs.pid_alive(int(child))
    work.stop()
    assert work.wait(10)
    assert work.exit_status == -signal.SIGTERM
    wait_for(lambda: not procs.pid_alive(int(child)))


def test_kill_ends_a_workload_that_ignores_the_stop_signal(started,
                                                           tmp_path):
    child_file = tmp_path / 'child'
    work = started(group_script(child_file, trap="trap '' TERM;"), tmp_path)
    go(work)
    child = int(wait_for(lambda: child_file.exists()
                         and child_file.read_text().strip()))
    work.stop()
    assert not work.wait(0.5)
    work.kill()
    assert work.wait(10)
    assert work.exit_status == -signal.SIGKILL
    wait_for(lambda: not procs.pid_alive(child))


def test_stop_signal_is_configurable(started, tmp_path):
    work = started(['sleep', '30'], tmp_path, stop_signal=signal.SIGINT)
    go(work)
    work.stop()
    assert work.wait(10)
    assert work.exit_status == -signal.SIGINT


def test_output_goes_to_the_log_file_appended(started, tmp_path):
    log = tmp_path / 'workload.log'
    log.write_text('before\n')
    work = started(['sh', '-c', 'echo out; echo err >&2'], tmp_path,
                   log_file=str(log))
    go(work)
    assert work.wait(10) and work.exit_status == 0
    assert log.read_text().splitlines() == ['before', 'out', 'err']


def test_env_replaces_the_environment(started, tmp_path):
    out = tmp_path / 'env'
    work = started(['sh', '-c', 'echo "$HB_TEST" > %s' % out], tmp_path,
                   env={'PATH': os.environ['PATH'], 'HB_TEST': 'yes'})
    go(work)
    assert work.wait(10) and out.read_text() == 'yes\n'


STARTER = textwrap.dedent('''
    import sys, time
    from heartbeat.workload.process import WorkloadProcess
    command = [arg for arg in sys.argv[3:] if arg != '--no-go']
    work = WorkloadProcess(command, sys.argv[1], register=False,
                           log_file=sys.argv[2])
    pending = work.spawn()
    if '--no-go' not in sys.argv:
        pending.go()
    print(pending.pid, flush=True)
    time.sleep(60)
''')


def start_starter(tmp_path, *command):
    """A separate starter process (the agent's stand-in); its pid line."""
    starter = subprocess.Popen(
        [sys.executable, '-c', STARTER, str(tmp_path / 'state'),
         str(tmp_path / 'workload.log'), *command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    line = starter.stdout.readline()
    assert line, starter.communicate(timeout=10)
    return starter, int(line)


def test_killing_the_starter_leaves_the_workload_running(started, tmp_path):
    log = tmp_path / 'workload.log'
    ticker = ('while true; do echo tick; sleep 0.05; done')
    starter, pid = start_starter(tmp_path, 'sh', '-c', ticker)
    work = started(['sh', '-c', ticker], tmp_path / 'state')
    try:
        wait_for(lambda: log.exists() and 'tick' in log.read_text())
        # The starter's whole process group, as a terminal or a supervisor
        # would kill it.
        os.killpg(starter.pid, signal.SIGKILL)
        starter.wait(10)
        starter.stdout.close()
        starter.stderr.close()
        size = log.stat().st_size
        # Still alive and still writing: it never wrote into the starter's
        # pipes, which are closed now.
        wait_for(lambda: log.stat().st_size > size + 20)
        identity = work.adopt()
        assert identity is not None and identity.pid == pid
        assert work.running()
    finally:
        if work.identity is None:
            os.killpg(pid, signal.SIGKILL)
    work.stop()
    assert work.wait(10)


def test_a_starter_killed_before_go_leaves_nothing_running(tmp_path):
    marker = tmp_path / 'ran'
    starter, pid = start_starter(tmp_path, '--no-go', 'touch', str(marker))
    os.killpg(starter.pid, signal.SIGKILL)
    starter.wait(10)
    starter.stdout.close()
    starter.stderr.close()
    # The launcher reads end of file instead of go and exits.
    wait_for(lambda: not procs.pid_alive(pid))
    assert not marker.exists()
