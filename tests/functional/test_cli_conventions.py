"""Conventions every command keeps, run as a user runs them.

Data on stdout, logs and errors on stderr; --version; --help that says the
exit statuses and each option's default, without eventlet's deprecation
notice; bad values and unreadable config files answered in one line
naming the program, exit status 2, no traceback.
"""

import os
import subprocess
import sys
import time

import pytest

from heartbeat import cmd

COMMANDS = {
    'heartbeat-status': 'heartbeat.cmd.status',
    'heartbeat-member': 'heartbeat.cmd.member',
    'heartbeat-storage': 'heartbeat.cmd.storage',
    'heartbeat-local-cluster': 'heartbeat.cmd.local_cluster',
    'heartbeat-broker': 'heartbeat.cmd.broker',
    'heartbeat-agent': 'heartbeat.cmd.agent',
    'heartbeat-maintenance': 'heartbeat.cmd.maintenance',
}


def run(module, *args, cwd=None):
    return subprocess.run([sys.executable, '-m', module, *args],
                          capture_output=True, text=True, timeout=60,
                          check=False, cwd=cwd)


def test_every_console_script_is_listed_here():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(os.path.join(os.path.dirname(__file__), '..', '..',
                             'setup.cfg'))
    scripts = parser['entry_points']['console_scripts']
    names = {line.split('=')[0].strip() for line in scripts.splitlines()
             if line.strip()}
    assert names == set(COMMANDS)


@pytest.mark.parametrize('prog', sorted(COMMANDS))
def test_version_and_help(prog):
    version = run(COMMANDS[prog], '--version')
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == cmd.version()
    helped = run(COMMANDS[prog], '--help')
    assert helped.returncode == 0, helped.stderr
    assert 'Exit status: 0 ok; 1 ' in ' '.join(helped.stdout.split())
    assert 'usage: %s' % prog in helped.stdout
    assert 'Eventlet is deprecated' not in helped.stderr
    assert helped.stderr == ''


def test_help_shows_defaults():
    out = ' '.join(run(COMMANDS['heartbeat-member'], '--help').stdout.split())
    assert 'keeps retrying for ever. (default: 10)' in out


@pytest.mark.parametrize('args,needle', [
    (['--group', 'g', '--host-id', '3000'], 'argument --host-id: Invalid'),
    (['--group', 'g', '--host-id', 'x'], 'argument --host-id: Invalid'),
])
def test_bad_cli_value_is_one_line_rc_2(args, needle):
    proc = run(COMMANDS['heartbeat-member'], *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('heartbeat-member: error: ' + needle)


@pytest.mark.parametrize('prog', ['heartbeat-status', 'heartbeat-storage',
                                  'heartbeat-broker'])
def test_config_file_that_is_a_directory(prog, tmp_path):
    args = ['--config-file', str(tmp_path)]
    if prog == 'heartbeat-storage':
        args.append('dump')
    proc = run(COMMANDS[prog], *args)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ['%s: error: Cannot read config file %s: Is a directory'
                     % (prog, tmp_path)], proc.stderr


def test_logs_go_to_stderr_and_json_stays_parseable(tmp_path):
    import json

    conf = tmp_path / 'hb.conf'
    conf.write_text('[heartbeat]\nhost_id = 1\nreport_interval = 0.2\n'
                    'service_down_time = 1\n[heartbeat_storage]\n'
                    'path = %s\nmax_hosts = 4\n' % (tmp_path / 'md'))
    init = run(COMMANDS['heartbeat-storage'], '--debug', '--config-file',
               str(conf), 'init')
    assert init.returncode == 0, init.stderr
    dump = run(COMMANDS['heartbeat-storage'], '--debug', '--config-file',
               str(conf), 'dump', '--json')
    assert dump.returncode == 0, dump.stderr
    json.loads(dump.stdout)
    # Logs were written (on stderr), none on stdout.
    assert 'DEBUG' in dump.stderr or 'INFO' in init.stderr, (
        init.stderr + dump.stderr)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _one_line_error(proc, prog='heartbeat-status'):
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('%s: error: ' % prog), proc.stderr
    return lines[0]


@pytest.mark.parametrize('module,driver,extra', [
    ('redis', 'redis', "pip install 'heartbeat[redis]'"),
    ('tooz', 'tooz', "pip install 'heartbeat[zookeeper]'"),
])
def test_driver_without_its_extra(tmp_path, module, driver, extra):
    conf = tmp_path / 'hb.conf'
    conf.write_text('[heartbeat]\ndriver = %s\n' % driver)
    # As if the library was not installed: importing it fails.
    code = ('import sys; sys.modules[%r] = None\n'
            'from heartbeat.cmd import status\n'
            'sys.argv[0] = "heartbeat-status"\n'
            'sys.exit(status.main(["--config-file", %r]))'
            % (module, str(conf)))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=60, check=False)
    line = _one_line_error(proc)
    assert '[heartbeat] driver' in line and extra in line, line


@pytest.mark.parametrize('url,needle', [
    ('zoo://127.0.0.1:1', "tooz has no 'zoo' backend"),
    ('zookeeper://127.0.0.1:%d', 'Cannot reach the tooz zookeeper backend'),
    ('etcd3+http://127.0.0.1:%d', 'Cannot reach the tooz etcd3+http'),
    ('memcached://127.0.0.1:%d', 'Cannot reach the tooz memcached'),
])
def test_tooz_backend_that_cannot_work(tmp_path, url, needle):
    if '%d' in url:
        url = url % _free_port()
    conf = tmp_path / 'hb.conf'
    conf.write_text('[heartbeat]\ndriver = tooz\n[heartbeat_tooz]\n'
                    'backend_url = %s\n' % url)
    started = time.monotonic()
    proc = run(COMMANDS['heartbeat-status'], '--config-file', str(conf))
    assert time.monotonic() - started < 10
    line = _one_line_error(proc)
    assert needle in line and '[heartbeat_tooz]' in line, line


def test_reporting_commands_speak_json(tmp_path):
    import json

    conf = tmp_path / 'hb.conf'
    conf.write_text('[heartbeat]\nhost_id = 1\nreport_interval = 0.2\n'
                    'service_down_time = 1\n[heartbeat_storage]\n'
                    'path = %s\nmax_hosts = 4\n' % (tmp_path / 'md'))
    init = run(COMMANDS['heartbeat-storage'], '--config-file', str(conf),
               'init', '--json')
    assert init.returncode == 0, init.stderr
    said = json.loads(init.stdout)
    assert said['action'] == 'init' and said['max_hosts'] == 4
    member = subprocess.Popen(
        [sys.executable, '-m', COMMANDS['heartbeat-member'], '--config-file',
         str(conf), '--group', 'g', '--member-id', 'm1', '--json'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = member.stdout.readline()
        joined = json.loads(line)
        assert joined['event'] == 'joined' and joined['member_id'] == 'm1'
        assert joined['pid'] == member.pid and joined['host_id'] == 1
    finally:
        member.terminate()
        member.wait(timeout=30)


def test_local_cluster_json_summary_and_keep():
    import json
    import shutil

    proc = run(COMMANDS['heartbeat-local-cluster'], '--hosts', '2',
               '--duration', '12', '--interval', '0.1', '--down-time', '0.6',
               '--loop', '0.3',
               '--json', '--keep')
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    try:
        assert summary['ok'] and summary['hosts'] == 2
        assert summary['serving_at_end'] in ('host-1', 'host-2')
        assert summary['never_two'] and len(summary['runs']) == 1
        # Progress went to stderr, not into the JSON.
        assert 'every broker answers' in proc.stderr
        # What it printed still works after it ended.
        after = run(COMMANDS['heartbeat-status'], '--config-file',
                    summary['config'], '--json', '--quick')
        assert after.returncode == 0, after.stderr
        members = json.loads(after.stdout)
        assert sorted(m['member_id'] for m in members) == [
            'host-1', 'host-2']
        assert {m['status'] for m in members} == {'left'}
    finally:
        shutil.rmtree(summary['workdir'], ignore_errors=True)


@pytest.mark.parametrize('prog,first', [
    ('heartbeat-member', '--group'), ('heartbeat-status', '--broker'),
    ('heartbeat-local-cluster', '--down-time')])
def test_own_options_come_before_oslo_logs(prog, first):
    out = run(COMMANDS[prog], '--help').stdout
    own = out.index('\n  %s' % first)
    general = out.index('\nconfiguration and logging options:')
    assert own < general < out.index('\n  --log-file')
    assert out.index('\n  --config-file') > general


def test_sub_command_help_shows_defaults():
    out = ' '.join(run(COMMANDS['heartbeat-storage'], 'init',
                       '--help').stdout.split())
    assert 'refuse (nobody can tell). (default: 10.0)' in out
