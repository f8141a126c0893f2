"""A second heartbeat-broker on a live installation's socket ends at once
with status 2 and one line, and never touches the storage (no ghost member
in a slot), whether the check runs before the fork or in the worker."""

import os
import subprocess
import sys
import time

import pytest

from heartbeat.drivers.storage import admin
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import short_dir
from heartbeat.testing import config
from heartbeat.testing.waiting import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.storage]


def members(config_path):
    conf = config.make_conf(argv=['--config-file', config_path])
    _, rows = admin.dump_area(conf)
    return {r.host_id for r in rows if r.status != 'empty'}


def test_a_second_broker_on_the_same_socket_refuses_without_a_slot():
    workdir = short_dir('hb2b')
    metadata = os.path.join(workdir, 'metadata')
    first = BrokerProcess(workdir, 1, metadata)
    init_area(first.config_path)
    first.start()
    try:
        wait_for(lambda: members(first.config_path) == {1})
        second = BrokerProcess(workdir, 2, metadata,
                               overrides={'broker': {
                                   'socket_path': first.socket_path}})
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, '-m', 'heartbeat.cmd.broker', '--config-file',
             second.config_path], capture_output=True, text=True,
            timeout=60, check=False)
        took = time.monotonic() - started
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert took < 10, took
        assert 'already listens' in out, out
        assert 'Forking too fast' not in out and 'Traceback' not in out
        time.sleep(1.0)
        # No ghost member: slot 2 was never claimed; the first still runs.
        assert members(first.config_path) == {1}
        assert first.status().writer.healthy
    finally:
        first.stop()
