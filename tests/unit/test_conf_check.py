"""Unknown options and sections in config files, and readable errors."""

import os
import subprocess
import sys
import tempfile

from oslo_config import cfg
import pytest

from heartbeat.conf import check
from heartbeat import exception
from heartbeat.testing import config

TYPOS = """\
[DEFAULT]
debug = false
graceful_shutdown_timeout = 5
foo_bar = 1

[heartbeat]
report_intervall = 3
service-down-time = 60

[hearbeat]
driver = storage

[HEARTBEAT_STORAGE]
max_hosts = 4

[agent]
loop_interval = 1
"""


def write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return str(path)


def parsed(args):
    return config.make_conf(argv=args)


def test_misspelt_option_section_and_default_are_found(tmp_path):
    path = write(tmp_path / 'hb.conf', TYPOS)
    conf = parsed(['--config-file', path])
    found = {(f.section, f.option): f for f in check.unknown(conf)}
    # debug is oslo.log's, [agent] another command's, service-down-time
    # and the upper-case section spell known names: none is reported.
    assert set(found) == {('DEFAULT', 'foo_bar'),
                          ('heartbeat', 'report_intervall'),
                          ('hearbeat', None)}
    assert str(found['heartbeat', 'report_intervall']) == (
        '[heartbeat] report_intervall in %s: unknown option (did you mean '
        'report_interval?)' % path)
    assert str(found['hearbeat', None]) == (
        '[hearbeat] in %s: unknown section (did you mean [heartbeat]?)'
        % path)
    assert found['DEFAULT', 'foo_bar'].suggestion is None


def test_config_dir_files_are_checked_after_config_file(tmp_path):
    first = write(tmp_path / 'a.conf', '[heartbeat]\nreport_interval = 1\n')
    conf_d = tmp_path / 'conf.d'
    conf_d.mkdir()
    second = write(conf_d / '10-typo.conf', '[heartbeat]\nhostid = 3\n')
    write(conf_d / 'ignored.txt', '[nothing]\n')
    conf = parsed(['--config-file', first, '--config-dir', str(conf_d)])
    assert check.config_files(conf) == [first, second]
    assert [(f.path, f.option) for f in check.unknown(conf)] == [
        (second, 'hostid')]


def test_strict_refuses_in_one_line_and_lax_returns_findings(tmp_path):
    path = write(tmp_path / 'hb.conf', TYPOS)
    conf = parsed(['--config-file', path])
    assert len(check.check_files(conf)) == 3
    with pytest.raises(exception.ConfigError) as err:
        check.check_files(conf, strict=True)
    text = str(err.value)
    assert '\n' not in text
    assert 'report_intervall' in text and '[hearbeat]' in text


def test_a_clean_file_has_no_findings(tmp_path):
    path = write(tmp_path / 'hb.conf', '[heartbeat]\nreport_interval = 2\n')
    conf = parsed(['--config-file', path])
    assert check.check_files(conf, strict=True) == []
    check.check_values(conf)


def test_bad_value_names_section_option_and_file(tmp_path):
    # claim_timeout exists in several sections: the one of the file wins.
    path = write(tmp_path / 'hb.conf',
                 '[heartbeat_tooz]\nclaim_timeout = soon\n')
    conf = parsed(['--config-file', path])
    with pytest.raises(exception.ConfigError) as err:
        check.check_values(conf)
    text = str(err.value)
    assert text.startswith('[heartbeat_tooz] claim_timeout in %s: ' % path)
    assert 'LocationInfo' not in text


def test_describe_rewrites_oslo_config_location(tmp_path):
    path = write(tmp_path / 'hb.conf', '[heartbeat]\nhost_id = many\n')
    conf = parsed(['--config-file', path])
    with pytest.raises(cfg.ConfigFileValueError) as err:
        _ = conf.heartbeat.host_id
    assert 'LocationInfo' in str(err.value)
    text = check.describe(err.value)
    assert text.startswith('[heartbeat] host_id in %s: ' % path)
    assert 'LocationInfo' not in text
    # Other errors pass through unchanged.
    assert check.describe(cfg.Error('plain')) == 'plain'


def status_cmd_run(*args):
    """heartbeat-status in a process of its own.

    It selects the oslo.service backend, which must not leak into this
    test process.
    """
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    env.pop('HEARTBEAT_EVENTLET', None)
    # An empty --config-dir: the host's /etc/heartbeat/*.conf.d stays out.
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.run([sys.executable, '-m', 'heartbeat.cmd.status',
                               '--config-dir', empty, *args],
                              capture_output=True, text=True, timeout=60,
                              check=False, env=env)
    return proc.returncode, proc.stderr


def test_command_refuses_with_strict_config(tmp_path):
    path = write(tmp_path / 'hb.conf', TYPOS)
    rc, err = status_cmd_run('--config-file', path, '--strict-config')
    assert rc == 2
    errors = [line for line in err.splitlines()
              if line.startswith('heartbeat-status: ')]
    assert len(errors) == 1, err
    assert '[heartbeat] report_intervall in %s' % path in errors[0]


def test_command_reports_bad_value_without_location_repr(tmp_path):
    path = write(tmp_path / 'hb.conf', '[heartbeat]\nreport_interval = x\n')
    rc, err = status_cmd_run('--config-file', path)
    assert rc == 2
    assert '[heartbeat] report_interval in %s: ' % path in err
    assert 'LocationInfo' not in err
    assert os.path.exists(path)
