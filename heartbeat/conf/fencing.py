"""Options of the fencing authority (sanlock) ([fencing])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup(
    'fencing', title='Fencing authority (sanlock, flock)',
    help='sanlock guarantees that the protected workload never runs on two '
         'hosts at once: the broker joins a lockspace with [heartbeat] '
         'host_id and acquires the workload\'s resource lease for the '
         'workload process. flock gives the same guarantee between '
         'processes of one machine only.')

MiB = 1024 * 1024

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        'fencer', default='sanlock',
        choices=[('sanlock', 'the sanlock daemon (production)'),
                 ('flock', 'a kernel lock on lease_path held by the '
                           'workload process: ONE MACHINE ONLY (tests, '
                           'demos, containers on one node); refused on '
                           'network filesystems'),
                 ('none', 'no fencing at all: UNSAFE, for demos and tests '
                          'only')],
        help='Fencing authority, registered under the "heartbeat.fencers" '
             'entry point.'),
    cfg.StrOpt(
        'lease_path', default='/var/lib/heartbeat/leases',
        help='Shared file or block device holding the sanlock lockspace and '
             'the resource lease. Initialise it once with '
             '"heartbeat-storage sanlock-init". With fencer = flock: the '
             'file the workload process locks (created if missing, on a '
             'local filesystem).'),
    cfg.StrOpt(
        'lockspace_name', default='heartbeat',
        help='sanlock lockspace name (at most 48 bytes).'),
    cfg.IntOpt(
        'lockspace_offset', default=0, min=0,
        help='Byte offset of the lockspace in lease_path, a multiple of '
             '1 MiB.'),
    cfg.StrOpt(
        'resource_name', default='workload',
        help='sanlock resource name of the protected workload\'s lease (at '
             'most 48 bytes).'),
    cfg.IntOpt(
        'resource_offset', default=MiB, min=0,
        help='Byte offset of the resource lease in lease_path, a multiple '
             'of 1 MiB, after the lockspace.'),
    cfg.IntOpt(
        'io_timeout', default=10, min=1, max=300,
        help='sanlock I/O timeout in seconds, written into the lockspace '
             'and used when joining. Renewals run every 2 x io_timeout and '
             'lease holders are killed after 8 x io_timeout without a '
             'renewal; peers are declared dead after 8 x io_timeout plus '
             '60 s.'),
    cfg.FloatOpt(
        'join_timeout', default=120.0, min=1.0, max=3600.0, mutable=True,
        help='Seconds to wait for the lockspace join to complete before '
             'reporting it failed.'),
    cfg.BoolOpt(
        'join_on_start', default=True,
        help='Join the lockspace when the broker starts (the agent may also '
             'ask for it).'),
    cfg.StrOpt(
        'holders_file', sample_default='<[broker] socket_path>.holders',
        help='File in which the broker records the processes it acquired '
             'the workload lease for, rewritten atomically on every '
             'acquire and release, so that a broker restarted under a '
             'running workload reports that holder again (after checking '
             'it against sanlock and /proc). Default: beside [broker] '
             'socket_path, with the extension ".holders" '
             '(/run/heartbeat/broker.holders), a directory that survives '
             'broker restarts and is emptied at boot.'),
    cfg.StrOpt(
        'sanlock_run_dir',
        help='Run directory of the sanlock daemon to talk to (its '
             'SANLOCK_RUN_DIR). Default: the daemon\'s default.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
