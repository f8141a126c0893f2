"""heartbeat-status through its command line, against a real broker."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing.waiting import wait_for

pytestmark = pytest.mark.broker


def status_cli(config, *args):
    return subprocess.run(
        [sys.executable, '-m', 'heartbeat.cmd.status', '--config-file',
         config, '--broker', *args],
        capture_output=True, text=True, timeout=60, check=False)


def test_status_broker_json_and_table():
    workdir = short_dir()
    broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    try:
        init_area(broker.config_path)
        broker.start()
        with broker.client() as client:
            client.put_state('running', 3100)
        wait_for(lambda: broker.status().own.state == 'running')
        res = status_cli(broker.config_path, '--json')
        assert res.returncode == 0, res.stderr
        view = json.loads(res.stdout)
        assert view['own']['state'] == 'running'
        assert view['own']['score'] == 3100
        res = status_cli(broker.config_path)
        assert res.returncode == 0, res.stderr
        assert 'running' in res.stdout and '3100' in res.stdout
    finally:
        broker.stop()
    # With the broker gone the command says so and fails.
    res = status_cli(broker.config_path, '--json')
    assert res.returncode != 0
    assert res.stderr.strip()
    shutil.rmtree(workdir, ignore_errors=True)
