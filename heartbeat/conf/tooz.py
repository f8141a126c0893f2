"""Options of the tooz driver (a tooz backend URL) ([heartbeat_tooz])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup(
    'heartbeat_tooz', title='tooz driver (a tooz backend URL)',
    help='Reports carried as tooz group membership capabilities, on the '
         'tooz backends whose members can update them: ZooKeeper, etcd, '
         'redis and memcached.')

OPTS = [
    cfg.StrOpt(
        'backend_url', default='zookeeper://127.0.0.1:2181', secret=True,
        help='tooz backend URL: zookeeper://host:2181, '
             'etcd3+http://host:2379, redis://host:6379 or '
             'memcached://host:11211. It may hold credentials and is never '
             'logged. Backends that cannot carry reports (file://, and the '
             'lock-only ones) are refused at start.'),
    cfg.IntOpt(
        'session_timeout', default=30, min=1, max=3600,
        help='Seconds after which the backend drops the membership of a '
             'member whose tooz heartbeat stopped (ZooKeeper session '
             'timeout, etcd lease, redis and memcached key time to live; '
             'memcached, which counts whole seconds, may keep it up to one '
             'second longer). A member whose membership was dropped while '
             'it kept running rejoins on its next report.'),
    cfg.FloatOpt(
        'operation_timeout', default=10.0, min=0.1, max=600.0,
        help='Seconds one tooz request may take before it counts as '
             'failed.'),
    cfg.FloatOpt(
        'connect_timeout', default=5.0, min=0.1, max=600.0,
        help='Seconds to wait for a TCP connection to one of the backend\'s '
             'servers at start; when none answers, start fails at once with '
             'the reason instead of waiting for the client library\'s own '
             'retries (kazoo keeps trying for a whole session_timeout).'),
    cfg.FloatOpt(
        'claim_timeout', min=0.0, max=3600.0,
        help='Seconds a joining member waits for a member of the same id '
             'held by another process to disappear (a crashed process\'s '
             'membership expires after session_timeout) before the join is '
             'refused. Defaults to session_timeout plus [heartbeat] '
             'report_interval.'),
    cfg.StrOpt(
        'observer_id',
        help='tooz member id of this process when it only reads groups. '
             'Defaults to <host>.observer.<pid>.<random>.'),
    cfg.IntOpt(
        'payload_limit', default=16384, min=256, max=1024 * 1024,
        help='Largest encoded report, in bytes, that a member may publish.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
