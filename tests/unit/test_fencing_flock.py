"""The flock fencer and its kernel lock, with real processes and locks."""

import os
import subprocess
import sys
import time

import pytest

from heartbeat.broker import core
from heartbeat.broker import status
from heartbeat.conf import broker as broker_conf
from heartbeat.conf import fencing as fencing_conf
from heartbeat import exception
from heartbeat import fencing
from heartbeat.fencing import errors
from heartbeat.fencing.flock import FlockFencer
from heartbeat.fencing import kernel_lock
from heartbeat.testing import config
from heartbeat.workload.errors import WorkloadBusy
from heartbeat.workload import holder

MOUNTS = [
    '/dev/vda / ext4 rw 0 0\n',
    'server:/export /mnt/shared nfs4 rw 0 0\n',
    'tmpfs /mnt/shared/local tmpfs rw 0 0\n',
    'sshfs#me@far /mnt/far fuse.sshfs rw 0 0\n',
    'tmpfs /mnt/with\\040space tmpfs rw 0 0\n',
    'server:/x /mnt/caf\u00e9 nfs rw 0 0\n',
]


def make_conf(lease_path):
    return config.make_conf(
        register=[fencing_conf.register_opts, broker_conf.register_opts],
        heartbeat={'host_id': 2},
        fencing={'fencer': 'flock', 'lease_path': str(lease_path),
                 'holders_file': str(lease_path) + '.holders'})


def locker(path):
    """A process that holds the lock on ``path`` until killed."""
    code = ('import fcntl, os, sys, time\n'
            'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n'
            'fcntl.lockf(fd, fcntl.LOCK_EX)\n'
            'print("locked", flush=True)\n'
            'time.sleep(60)\n')
    proc = subprocess.Popen([sys.executable, '-c', code, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    return proc


@pytest.fixture
def procs():
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_parse_locks_keeps_granted_posix_write_locks_only():
    lines = ['1: POSIX  ADVISORY  WRITE 4242 fe:00:2146362 0 EOF\n',
             '1: -> POSIX  ADVISORY  WRITE 4343 fe:00:2146362 0 EOF\n',
             '2: FLOCK  ADVISORY  WRITE 77 fe:00:99 0 EOF\n',
             '3: POSIX  ADVISORY  READ 78 fe:00:98 0 EOF\n',
             '4: POSIX  ADVISORY  WRITE x 00:1b:6902 0 EOF\n',
             'garbage\n',
             '5: OFDLCK ADVISORY  WRITE -1 00:1b:1 0 EOF\n',
             '6: POSIX  ADVISORY  WRITE 12 0a:1b:6902 0 EOF\n']
    assert kernel_lock.parse_locks(lines) == [
        kernel_lock.LockEntry(4242, (0xfe, 0), 2146362),
        kernel_lock.LockEntry(12, (0x0a, 0x1b), 6902)]


@pytest.mark.parametrize('path,fstype', [
    ('/var/lib/heartbeat', 'ext4'),
    ('/mnt/shared/x', 'nfs4'),
    ('/mnt/shared', 'nfs4'),
    ('/mnt/shared/local/x', 'tmpfs'),
    ('/mnt/sharedness', 'ext4'),
    ('/mnt/far/y', 'fuse.sshfs'),
    ('/mnt/with space/y', 'tmpfs'),
    ('/mnt/caf\u00e9/leases', 'nfs'),
])
def test_the_filesystem_of_a_path_is_its_longest_mount(path, fstype):
    assert kernel_lock.filesystem_of(path, MOUNTS) == fstype


def test_network_and_fuse_filesystems_are_refused_with_the_reason():
    nfs = kernel_lock.refusal('/mnt/shared/leases', MOUNTS)
    assert 'nfs4' in nfs and 'one machine only' in nfs
    assert 'fuse.sshfs' in kernel_lock.refusal('/mnt/far/leases', MOUNTS)
    assert kernel_lock.refusal('/mnt/shared/local/leases', MOUNTS) is None
    assert kernel_lock.refusal('/x', []) is not None


def test_the_holder_is_the_locking_process_and_none_once_it_died(
        tmp_path, procs):
    path = tmp_path / 'leases'
    proc = locker(path)
    procs.append(proc)
    assert kernel_lock.holder(str(path)) == proc.pid
    fd, other = kernel_lock.take(str(path))
    assert (fd, other) == (None, proc.pid)
    proc.kill()
    proc.wait()
    assert kernel_lock.holder(str(path)) is None
    fd, other = kernel_lock.take(str(path))
    try:
        assert other is None and kernel_lock.holder(str(path)) == os.getpid()
    finally:
        os.close(fd)


def test_the_launcher_locks_for_the_workload_and_says_busy_otherwise(
        tmp_path):
    path = str(tmp_path / 'leases')
    work = holder.spawn(['sleep', '60'], flock=path)
    try:
        assert kernel_lock.holder(path) == work.pid
        with pytest.raises(WorkloadBusy, match='held by process %d'
                           % work.pid):
            holder.spawn(['sleep', '60'], flock=path)
        work.go()
        # The exec kept the lock: the workload itself holds it.
        assert kernel_lock.holder(path) == work.pid
    finally:
        work.proc.kill()
        work.proc.wait()
    assert kernel_lock.holder(path) is None


def test_flock_fencer_acquires_only_for_the_holder(tmp_path, procs):
    path = tmp_path / 'leases'
    fencer = fencing.load(make_conf(path))
    assert isinstance(fencer, FlockFencer) and fencer.safe
    with pytest.raises(errors.LeaseError, match='not joined'):
        fencer.acquire(os.getpid())
    view = fencer.join()
    assert view.lockspace.state == status.LOCKSPACE_JOINED
    assert view.fencer == 'flock' and 'one machine' in view.hosts_note
    bystander = subprocess.Popen(['sleep', '60'])
    procs.append(bystander)
    with pytest.raises(errors.LeaseError, match='does not hold the lock'):
        fencer.acquire(bystander.pid)
    owner = locker(path)
    procs.append(owner)
    with pytest.raises(errors.LeaseBusy, match='process %d' % owner.pid):
        fencer.acquire(bystander.pid)
    view = fencer.acquire(owner.pid)
    assert view.lease.held and [h.pid for h in view.lease.holders] == [
        owner.pid]
    with pytest.raises(errors.LockspaceError, match='Stop the workload'):
        fencer.leave()
    # A release while the holder runs cannot take its lock away.
    assert fencer.release(owner.pid).lease.held
    owner.kill()
    owner.wait()
    view = fencer.view()
    assert not view.lease.held
    assert [h.pid for h in view.lease.lost] == [owner.pid]
    assert fencer.leave().lockspace.state == status.LOCKSPACE_LEFT


def test_a_restarted_flock_fencer_takes_back_a_holder_that_still_locks(
        tmp_path, procs):
    path = tmp_path / 'leases'
    first = fencing.load(make_conf(path))
    first.join()
    owner = locker(path)
    procs.append(owner)
    gone = locker(tmp_path / 'other')
    procs.append(gone)
    first.acquire(owner.pid)
    # A second recorded holder whose lock is elsewhere: not taken back.
    first.book.add(gone.pid)
    second = fencing.load(make_conf(path))
    second.start()
    view = second.view()
    assert [h.pid for h in view.lease.holders] == [owner.pid]
    assert 'no longer holds the lock' in view.lease.lost[0].reason


def test_flock_fencer_refuses_a_network_filesystem(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_lock, 'refusal',
                        lambda path, mounts=None: 'it is on nfs4')
    conf = make_conf(tmp_path / 'leases')
    fencer = fencing.load(conf)
    with pytest.raises(errors.LockspaceError, match='nfs4'):
        fencer.join()
    assert fencer.view().lockspace.state == status.LOCKSPACE_FAILED
    conf.set_override('socket_path', str(tmp_path / 'b.sock'), 'broker')
    with pytest.raises(exception.ConfigError,
                       match=r'\[fencing\] lease_path for fencer = flock'):
        core.check_flock(conf)


def test_a_busy_lock_is_reported_by_the_launcher_in_one_line(tmp_path,
                                                             procs):
    path = tmp_path / 'leases'
    procs.append(locker(path))
    start = time.monotonic()
    proc = subprocess.run(holder.launcher_argv(['true'], flock=str(path)),
                          capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == holder.NOT_STARTED
    assert proc.stdout.startswith('busy the lock on %s is held by process'
                                  % path)
    assert proc.stdout.count('\n') == 1
    assert time.monotonic() - start < 10
