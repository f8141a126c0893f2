"""A broker whose backend URL can never work refuses at start.

An unparsable redis URL or an unknown tooz scheme is a configuration
error, not an outage to retry: the broker ends at once with status 2 and
one line naming the option, instead of retrying a connection for ever.
"""

import subprocess
import sys
import time

import pytest

from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import short_dir

pytestmark = pytest.mark.broker


@pytest.mark.parametrize('driver,section,option,url', [
    ('redis', 'heartbeat_redis', 'url', 'redis://localhost:notaport/0'),
    ('redis', 'heartbeat_redis', 'url', 'http://localhost:6379/0'),
    ('tooz', 'heartbeat_tooz', 'backend_url', 'zoo://localhost:2181'),
    ('tooz', 'heartbeat_tooz', 'backend_url', 'file:///tmp/x'),
])
def test_a_backend_url_that_cannot_work_is_refused_at_start(
        driver, section, option, url):
    workdir = short_dir('hbbad')
    broker = BrokerProcess(workdir, 1, workdir + '/metadata', overrides={
        'heartbeat': {'driver': driver}, section: {option: url}})
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.broker', '--config-file',
         broker.config_path], capture_output=True, text=True, timeout=60,
        check=False)
    took = time.monotonic() - started
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, out
    assert took < 10, took
    assert 'Traceback' not in out, out
    errors = [line for line in out.splitlines() if '[%s]' % section in line]
    assert errors, out
    assert option in errors[0], out
