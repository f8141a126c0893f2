"""Daemons refuse a misspelt config with --strict-config (real processes)."""

import subprocess
import sys
import time

import pytest

CONF = """\
[heartbeat]
host_id = 1
report_intervall = 3

[hearbeat]
driver = storage
"""


@pytest.mark.parametrize('module', ['heartbeat.cmd.broker',
                                    'heartbeat.cmd.agent'])
def test_daemon_refuses_unknown_options_in_one_line(tmp_path, module):
    path = tmp_path / 'heartbeat.conf'
    path.write_text(CONF, encoding='utf-8')
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, '-W', 'ignore', '-m', module, '--config-file',
         str(path), '--strict-config'],
        capture_output=True, text=True, timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert '[heartbeat] report_intervall in %s' % path in lines[0]
    assert '[hearbeat] in %s' % path in lines[0]
    assert 'Traceback' not in proc.stderr
