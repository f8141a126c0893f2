"""Options of the shared-storage metadata driver ([heartbeat_storage])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base
from heartbeat import exception

GROUP = cfg.OptGroup(
    'heartbeat_storage',
    title='Shared-storage metadata driver',
    help='A metadata file or block device shared by every host: slot 0 is '
         'global, slot N belongs to host_id N.')

SECTOR = 512

OPTS = [
    cfg.StrOpt(
        'path', default='/var/lib/heartbeat/metadata',
        help='Metadata file or block device shared by all hosts. Create and '
             'initialise it once with "heartbeat-storage init".'),
    cfg.IntOpt(
        'slot_size', default=4096, min=SECTOR, max=1024 * 1024,
        help='Bytes per slot, a multiple of 512 (sector aligned). Must match '
             'the value the area was initialised with.'),
    cfg.IntOpt(
        'max_hosts', default=base.MAX_HOST_ID, min=1, max=base.MAX_HOST_ID,
        help='Number of host slots in the area (host ids 1..max_hosts). Must '
             'match the value the area was initialised with.'),
    cfg.BoolOpt(
        'direct_io', default=True,
        help='Open the area with O_DIRECT so every read reaches the shared '
             'storage instead of the page cache. Where the filesystem refuses '
             'O_DIRECT (tmpfs, some FUSE mounts) heartbeat logs why and falls '
             'back to cached reads with O_DSYNC writes.'),
    cfg.FloatOpt(
        'claim_timeout', min=0.0, max=3600.0,
        help='Seconds a joining member watches an occupied slot for changes '
             'before it takes the slot over; a slot that changes meanwhile '
             'belongs to a live member and the join is refused. Defaults to '
             'twice [heartbeat] report_interval.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def validate(conf: cfg.ConfigOpts) -> None:
    st = conf.heartbeat_storage
    if st.slot_size % SECTOR:
        raise exception.ConfigError(
            '[heartbeat_storage] slot_size (%d) must be a multiple of %d; '
            'use 4096 unless the area was initialised otherwise.'
            % (st.slot_size, SECTOR))
    host_id = conf.heartbeat.host_id
    if host_id is not None and host_id > st.max_hosts:
        raise exception.ConfigError(
            '[heartbeat] host_id (%d) is above [heartbeat_storage] max_hosts '
            '(%d): choose a host_id in 1..%d.'
            % (host_id, st.max_hosts, st.max_hosts))


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
