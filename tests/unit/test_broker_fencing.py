"""Fencing pieces that need no sanlock daemon."""

import os
import subprocess
import sys

from oslo_config import cfg
import pytest

from heartbeat import conf as hb_conf
from heartbeat.conf import fencing as fencing_conf
from heartbeat import exception
from heartbeat import fencing
from heartbeat.fencing import base
from heartbeat.fencing import binding
from heartbeat.fencing.none import NoFencer
from heartbeat.workload import holder


def make_conf(**overrides):
    conf = cfg.ConfigOpts()
    hb_conf.register_opts(conf)
    fencing_conf.register_opts(conf)
    conf([], project='heartbeat')
    conf.set_override('host_id', 3, 'heartbeat')
    for key, value in overrides.items():
        conf.set_override(key, value, 'fencing')
    return conf


def test_none_fencer_is_loud_and_tracks_holders(caplog):
    conf = make_conf(fencer='none')
    fencer = fencing.load(conf)
    assert isinstance(fencer, NoFencer) and not fencer.safe
    assert 'UNSAFE' in caplog.text
    assert fencer.view()['lockspace']['state'] == base.LEFT
    assert fencer.join()['lockspace']['state'] == base.JOINED
    proc = subprocess.Popen(['sleep', '30'])
    try:
        view = fencer.acquire(proc.pid)
        assert view['lease']['held'] and 'UNSAFE' in view['warning']
        proc.kill()
        proc.wait()
        view = fencer.view()
        assert not view['lease']['held']
        assert view['lease']['lost'][0]['pid'] == proc.pid
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unknown_fencer_and_missing_host_id():
    conf = make_conf()
    conf.set_override('fencer', 'none', 'fencing')
    conf.clear_override('host_id', 'heartbeat')
    with pytest.raises(exception.ConfigError, match='host_id'):
        _ = fencing.load(conf).host_id


def test_pid_alive():
    assert base.pid_alive(os.getpid())
    proc = subprocess.Popen(['true'])
    proc.wait()
    assert not base.pid_alive(proc.pid)


def test_missing_binding_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, 'sanlock', raising=False)
    monkeypatch.setattr(binding, 'DIST_PACKAGES', str(tmp_path))
    monkeypatch.setattr(sys, 'path', [p for p in sys.path
                                      if 'dist-packages' not in p])
    monkeypatch.delenv(binding.RUN_DIR_ENV, raising=False)
    with pytest.raises(base.BindingMissing, match='python3-sanlock'):
        binding.load()


def test_holder_runs_the_command_only_after_go(tmp_path):
    marker = tmp_path / 'ran'
    work = holder.spawn(['touch', str(marker)], register=False)
    assert work.pid == work.proc.pid
    assert not marker.exists()
    work.go()
    assert work.proc.wait(10) == 0
    assert marker.exists()


def test_holder_abort_never_runs_the_command(tmp_path):
    marker = tmp_path / 'ran'
    work = holder.spawn(['touch', str(marker)], register=False)
    assert work.abort() == holder.NOT_STARTED
    assert not marker.exists()


def test_holder_fails_clearly_without_a_sanlock_daemon(tmp_path):
    with pytest.raises(base.FencingError, match='did not register'):
        holder.spawn(['true'], sanlock_run_dir=str(tmp_path),
                     stderr=subprocess.DEVNULL)
