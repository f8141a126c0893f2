"""Options of the heartbeat-broker daemon ([broker])."""

from __future__ import annotations

from oslo_config import cfg
from oslo_config import types

from heartbeat.conf import base

GROUP = cfg.OptGroup(
    'broker', title='heartbeat-broker daemon',
    help='The broker does all storage, monitoring and locking I/O of a host '
         'and answers local callers over a unix socket from memory.')

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        'socket_path', default='/run/heartbeat/broker.sock',
        help='Unix socket the broker listens on. Created with mode 0660; '
             'the directory must exist and be writable by the broker.'),
    cfg.StrOpt(
        'socket_group',
        help='Group that owns the socket, so that its members may connect. '
             'Default: the broker\'s own group.'),
    cfg.ListOpt(
        'allowed_uids', default=[], item_type=types.Integer(min=0),
        mutable=True,
        help='User ids (besides root and the broker\'s own user) allowed '
             'to call the broker; checked with SO_PEERCRED on every '
             'connection.'),
    cfg.ListOpt(
        'allowed_gids', default=[], item_type=types.Integer(min=0),
        mutable=True,
        help='Group ids whose members (primary group of the calling '
             'process) may call the broker.'),
    cfg.IntOpt(
        'max_connections', default=64, min=1, max=4096,
        help='Concurrent client connections. When all are in a call, more '
             'are refused with an error reply; otherwise the stalest '
             'connection makes room (see reserved_connections).'),
    cfg.IntOpt(
        'reserved_connections', default=8, min=0, max=4095, mutable=True,
        help='Connections of max_connections kept free for new callers: '
             'once fewer are free, each new connection closes the one that '
             'has gone longest without a whole request (never one in a '
             'call), so that slow or idle clients cannot lock callers out. '
             'At most max_connections - 1 are reserved.'),
    cfg.FloatOpt(
        'client_read_timeout', default=2.0, min=0.01, max=3600.0,
        mutable=True,
        help='Seconds a client may take to send a whole request, counted '
             'from connecting or from the request\'s first byte, and to '
             'read its answer; a slower client is disconnected.'),
    cfg.FloatOpt(
        'client_idle_timeout', default=60.0, min=0.1, max=86400.0,
        mutable=True,
        help='Seconds a connection may stay open without a request before '
             'the broker closes it (clients reconnect on their next call).'),
    cfg.IntOpt(
        'max_frame_bytes', default=1024 * 1024, min=4096,
        max=64 * 1024 * 1024,
        help='Largest RPC frame accepted, in bytes. Larger frames are '
             'refused and the connection is closed.'),
    cfg.FloatOpt(
        'call_timeout', default=5.0, min=0.01, max=3600.0,
        help='Default seconds a client waits for an answer before giving '
             'up (clients may pass their own).'),
    cfg.StrOpt(
        'group', default='hosts',
        help='Service group the broker publishes its host\'s status in.'),
    cfg.StrOpt(
        'storage_connection', default='path',
        choices=[('path', 'a file on a shared POSIX filesystem (NFS, '
                          'GlusterFS, ...)'),
                 ('block', 'a shared block device (iSCSI, FC LUN)')],
        help='How the broker reaches [heartbeat_storage] path, registered '
             'under the "heartbeat.storage_connections" entry point.'),
    cfg.FloatOpt(
        'peer_refresh_interval', min=0.05, max=3600.0, mutable=True,
        help='Seconds between two reads of the peers\' statuses. Default: '
             '[heartbeat] report_interval.'),
    cfg.FloatOpt(
        'storage_stall_after', default=10.0, min=0.05, max=3600.0,
        mutable=True,
        help='Seconds a storage operation may take, or the broker may go '
             'without a successful storage read or write, before get_status '
             'reports the storage as stalled.'),
    cfg.FloatOpt(
        'connect_retry_interval', default=2.0, min=0.05, max=600.0,
        mutable=True,
        help='Seconds between two attempts to connect the storage while '
             'it is unavailable.'),
    cfg.FloatOpt(
        'domain_monitor_interval', default=5.0, min=0.05, max=3600.0,
        mutable=True,
        help='Seconds between two validations of the storage domain while '
             'the domain monitor runs.'),
    cfg.FloatOpt(
        'domain_probe_timeout', default=10.0, min=0.05, max=3600.0,
        mutable=True,
        help='Seconds a read/write probe of the storage domain may take '
             'before the domain is reported invalid.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
