"""Fencing pieces that need no sanlock daemon: the none fencer, the typed
views, and the lease holders kept across a broker restart."""

import json
import os
import subprocess
import sys

import pytest

from heartbeat.broker import status
from heartbeat.conf import broker as broker_conf
from heartbeat.conf import fencing as fencing_conf
from heartbeat import exception
from heartbeat import fencing
from heartbeat.fencing import base
from heartbeat.fencing import binding
from heartbeat.fencing import errors
from heartbeat.fencing import holders
from heartbeat.fencing.none import NoFencer
from heartbeat.testing import config
from heartbeat.workload import procs


def make_conf(**overrides):
    return config.make_conf(register=[fencing_conf.register_opts],
                            heartbeat={'host_id': 3}, fencing=overrides)


@pytest.fixture
def sleeper():
    procs_ = []

    def start():
        procs_.append(subprocess.Popen(['sleep', '60']))
        return procs_[-1]
    yield start
    for proc in procs_:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill(proc):
    proc.kill()
    proc.wait()


def test_none_fencer_is_loud_and_tracks_holders(caplog, sleeper):
    conf = make_conf(fencer='none')
    fencer = fencing.load(conf)
    assert isinstance(fencer, NoFencer) and not fencer.safe
    assert 'UNSAFE' in caplog.text
    view = fencer.view()
    assert isinstance(view, status.FencingStatus)
    assert view.lockspace.state == status.LOCKSPACE_LEFT
    assert (view.fencer, view.safe, view.host_id) == ('none', False, 3)
    assert fencer.join().lockspace.state == status.LOCKSPACE_JOINED
    proc = sleeper()
    view = fencer.acquire(proc.pid)
    assert view.lease.held and 'UNSAFE' in view.warning
    assert view.lease.holders == [status.LeaseHolder(
        pid=proc.pid, age_s=view.lease.holders[0].age_s, recovered=False)]
    kill(proc)
    view = fencer.view()
    assert not view.lease.held
    assert view.lease.lost[0].pid == proc.pid
    assert 'exited' in view.lease.lost[0].reason


def test_the_view_travels_as_the_status_contract(sleeper, tmp_path):
    conf = make_conf(fencer='none', holders_file=str(tmp_path / 'h'))
    fencer = fencing.load(conf)
    fencer.join()
    fencer.acquire(sleeper().pid)
    view = fencer.view()
    wire = json.loads(json.dumps(status.to_dict(view)))
    assert status.from_dict(status.FencingStatus, wire) == view


def test_lockspace_names_are_the_contract_names():
    assert (base.LEFT, base.JOINING, base.JOINED, base.LEAVING,
            base.FAILED) == status.LOCKSPACE_STATES


def test_unknown_fencer_and_missing_host_id():
    conf = make_conf()
    conf.set_override('fencer', 'none', 'fencing')
    conf.clear_override('host_id', 'heartbeat')
    with pytest.raises(exception.ConfigError, match='host_id'):
        _ = fencing.load(conf).host_id


def test_missing_binding_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, 'sanlock', raising=False)
    monkeypatch.setattr(binding, 'DIST_PACKAGES', str(tmp_path))
    monkeypatch.setattr(sys, 'path', [p for p in sys.path
                                      if 'dist-packages' not in p])
    monkeypatch.delenv(binding.RUN_DIR_ENV, raising=False)
    with pytest.raises(errors.BindingMissing, match='python3-sanlock'):
        binding.load()


# -- the holders file ---------------------------------------------------------

def record(pid, start=None, at=1.5):
    return holders.HolderRecord(pid, start, at)


def test_holders_file_round_trip_leaves_no_temporary(tmp_path):
    path = tmp_path / 'holders'
    store = holders.HoldersFile(str(path))
    assert store.load().holders == ()
    store.save([record(10, 99), record(11)])
    loaded = store.load()
    assert loaded.holders == (record(10, 99), record(11))
    assert loaded.boot_id == holders.boot_id()
    store.save([])
    assert store.load().holders == ()
    assert os.listdir(tmp_path) == ['holders']


@pytest.mark.parametrize('content', [
    '{"version": 1, "holders": [{"pid": "x"}]}', 'not json', '[]',
    '{"version": 7, "holders": []}'])
def test_a_holders_file_that_does_not_fit_is_an_error(tmp_path, content):
    path = tmp_path / 'holders'
    path.write_text(content)
    with pytest.raises(errors.FencingError, match=str(path)):
        holders.HoldersFile(str(path)).load()


def test_a_holders_file_that_cannot_be_written_is_an_error(tmp_path):
    store = holders.HoldersFile(str(tmp_path / 'missing' / 'holders'))
    with pytest.raises(errors.FencingError, match='Cannot record'):
        store.save([record(1)])


def test_process_gone_reasons(sleeper):
    proc = sleeper()
    start = procs.start_time(proc.pid)
    boot = holders.boot_id()
    assert holders.process_gone(record(proc.pid, start), boot, boot) is None
    assert 'another process' in holders.process_gone(
        record(proc.pid, start + 1), boot, boot)
    assert 'restarted' in holders.process_gone(
        record(proc.pid, start), 'another-boot', boot)
    kill(proc)
    assert 'exited' in holders.process_gone(record(proc.pid, start),
                                            boot, boot)


def test_default_place_is_beside_the_broker_socket(tmp_path):
    conf = make_conf()
    assert holders.default_path(conf) is None  # no broker: nothing kept
    broker_conf.register_opts(conf)
    conf.set_override('socket_path', '/run/hb/broker.sock', 'broker')
    assert holders.default_path(conf) == '/run/hb/broker.holders'
    conf.set_override('holders_file', str(tmp_path / 'h'), 'fencing')
    assert holders.default_path(conf) == str(tmp_path / 'h')


# -- across a broker restart --------------------------------------------------

def restarted(conf):
    """A new fencer on the same config, started: a broker restart."""
    fencer = fencing.load(conf)
    fencer.start()
    return fencer


def test_holders_are_taken_back_after_a_restart(sleeper, tmp_path):
    conf = make_conf(fencer='none', holders_file=str(tmp_path / 'h'))
    first = fencing.load(conf)
    first.start()
    first.join()
    keep, gone, released = sleeper(), sleeper(), sleeper()
    for proc in (keep, gone, released):
        first.acquire(proc.pid)
    first.release(released.pid)
    kill(gone)
    # The first broker dies without a word; its successor reads the file.
    second = restarted(conf)
    view = second.view()
    assert [(h.pid, h.recovered) for h in view.lease.holders] == [
        (keep.pid, True)]
    assert view.lease.holders[0].age_s >= 0
    assert [lost.pid for lost in view.lease.lost] == [gone.pid]
    assert 'exited' in view.lease.lost[0].reason
    kill(keep)
    view = second.view()
    assert not view.lease.held
    assert [lost.pid for lost in view.lease.lost] == [gone.pid, keep.pid]
    # Nothing is left to take back a second time.
    assert holders.HoldersFile(str(tmp_path / 'h')).load().holders == ()
    assert not restarted(conf).view().lease.lost


def test_a_reused_pid_is_not_taken_back(sleeper, tmp_path):
    path = str(tmp_path / 'h')
    proc = sleeper()
    start = procs.start_time(proc.pid)
    holders.HoldersFile(path).save([record(proc.pid, start - 1)])
    view = restarted(make_conf(fencer='none', holders_file=path)).view()
    assert not view.lease.held
    assert 'another process' in view.lease.lost[0].reason


def test_holders_of_another_boot_are_lost(sleeper, tmp_path):
    path = tmp_path / 'h'
    proc = sleeper()
    holders.HoldersFile(str(path)).save(
        [record(proc.pid, procs.start_time(proc.pid))])
    data = json.loads(path.read_text())
    data['boot_id'] = 'an-earlier-boot'
    path.write_text(json.dumps(data))
    view = restarted(make_conf(fencer='none',
                               holders_file=str(path))).view()
    assert not view.lease.held
    assert 'restarted' in view.lease.lost[0].reason


def test_holders_the_authority_cannot_confirm_yet_wait(sleeper, tmp_path):
    store = holders.HoldersFile(str(tmp_path / 'h'))
    proc = sleeper()
    store.save([record(proc.pid, procs.start_time(proc.pid))])
    book = base.Bookkeeping(store)

    def unreachable(pid):
        raise errors.FencingError('the daemon does not answer')
    book.recover(unreachable)
    assert not book.view().lease.held and not book.view().lease.lost
    assert list(book.pending) == [proc.pid]
    # Still recorded: a second restart would look for it again.
    assert [r.pid for r in store.load().holders] == [proc.pid]
    book.confirm_pending(lambda pid: None)
    assert [h.recovered for h in book.view().lease.holders] == [True]
    assert not book.pending


def test_holders_the_authority_denies_are_lost(sleeper, tmp_path):
    store = holders.HoldersFile(str(tmp_path / 'h'))
    proc = sleeper()
    store.save([record(proc.pid, procs.start_time(proc.pid))])
    book = base.Bookkeeping(store)
    book.recover(lambda pid: 'sanlock lists no lease for it')
    view = book.view()
    assert not view.lease.held
    assert view.lease.lost[0].reason == 'sanlock lists no lease for it'
    assert store.load().holders == ()


def test_a_file_that_cannot_be_written_shows_in_the_view(sleeper, tmp_path):
    conf = make_conf(fencer='none',
                     holders_file=str(tmp_path / 'missing' / 'h'))
    fencer = fencing.load(conf)
    view = fencer.acquire(sleeper().pid)
    assert view.lease.held  # the lease is held all the same
    assert 'Cannot record' in view.warning and 'UNSAFE' in view.warning


def test_a_corrupt_file_takes_nothing_back(tmp_path):
    path = tmp_path / 'h'
    path.write_text('{')
    fencer = restarted(make_conf(fencer='none', holders_file=str(path)))
    view = fencer.view()
    assert not view.lease.held and 'Cannot read' in view.warning
