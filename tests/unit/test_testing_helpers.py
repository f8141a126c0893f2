"""The shared test helpers: wait_for and make_conf."""

import itertools
import os
import subprocess
import sys
import time

import pytest

from heartbeat.conf import fencing as fencing_conf
from heartbeat.testing import config
from heartbeat.testing.waiting import wait_for


def test_wait_for_returns_the_first_true_value():
    calls = itertools.count()
    assert wait_for(lambda: next(calls) >= 3 and 'ready',
                    interval=0.001) == 'ready'
    assert next(calls) == 4


def test_wait_for_says_what_it_waited_for_and_the_last_value():
    start = time.monotonic()
    with pytest.raises(AssertionError) as err:
        wait_for(lambda: [], timeout=0.2, interval=0.01,
                 message='the list never filled')
    assert 0.2 <= time.monotonic() - start < 2
    assert str(err.value) == 'the list never filled within 0.2s (last: [])'


def test_wait_for_asks_at_least_once():
    assert wait_for(lambda: 1, timeout=0) == 1
    with pytest.raises(AssertionError, match='condition not met'):
        wait_for(lambda: None, timeout=0)


def test_make_conf_reads_no_default_file_or_dir():
    conf = config.make_conf(heartbeat={'report_interval': 0.5})
    assert conf.default_config_files == []
    assert conf.default_config_dirs == []
    assert conf.heartbeat.report_interval == 0.5


def test_make_conf_registers_more_groups_and_parses_argv(tmp_path):
    path = tmp_path / 'hb.conf'
    path.write_text('[heartbeat]\nreport_interval = 2\n'
                    '[fencing]\nfencer = none\n')
    conf = config.make_conf(argv=['--config-file', str(path)],
                            register=[fencing_conf.register_opts],
                            heartbeat={'host_id': 3})
    assert conf.heartbeat.report_interval == 2.0
    assert conf.heartbeat.host_id == 3
    assert conf.fencing.fencer == 'none'
    assert conf.default_config_dirs == []


def test_short_dirs_are_removed_when_the_process_exits():
    code = ('from heartbeat.testing.broker import short_dir\n'
            'import os\n'
            'path = short_dir("hbt")\n'
            'os.mkdir(path + "/sub")\n'
            'open(path + "/sub/f", "w").close()\n'
            'print(path)\n')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out.startswith('/') and not os.path.exists(out)
