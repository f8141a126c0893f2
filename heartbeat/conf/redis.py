"""Options of the native redis driver ([heartbeat_redis])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup(
    'heartbeat_redis', title='Native redis driver',
    help='Reports kept in redis: one round trip per beat, changes read by '
         'a server-side index, state changes pushed on a channel.')

OPTS = [
    cfg.StrOpt(
        'url', default='redis://127.0.0.1:6379/0', secret=True,
        help='Redis URL: redis://[[user]:password@]host[:port][/db], '
             'rediss://... for TLS, or unix:///path/to/socket?db=N. A '
             'password in the URL is never logged. Ignored for the address '
             'when sentinel_hosts is set.'),
    cfg.StrOpt(
        'username',
        help='ACL user name; overrides a user name in the URL.'),
    cfg.StrOpt(
        'password', secret=True,
        help='Password (AUTH); overrides a password in the URL.'),
    cfg.IntOpt(
        'db', min=0, max=1023,
        help='Database number; overrides the one in the URL.'),
    cfg.BoolOpt(
        'ssl', default=False,
        help='Use TLS even when the URL scheme is redis://.'),
    cfg.StrOpt(
        'ssl_ca_file',
        help='CA bundle that verifies the server certificate (TLS).'),
    cfg.StrOpt(
        'ssl_cert_file',
        help='Client certificate for TLS client authentication.'),
    cfg.StrOpt(
        'ssl_key_file', secret=True,
        help='Private key of ssl_cert_file.'),
    cfg.StrOpt(
        'ssl_cert_reqs', default='required',
        choices=[('required', 'verify the server certificate'),
                 ('optional', 'verify it when one is presented'),
                 ('none', 'do not verify (testing only)')],
        help='How the server certificate is checked with TLS.'),
    cfg.ListOpt(
        'sentinel_hosts', default=[],
        help='host:port of redis Sentinels. When set, the driver asks them '
             'for the current master of sentinel_service and follows '
             'failovers.'),
    cfg.StrOpt(
        'sentinel_service', default='mymaster',
        help='Name of the master the Sentinels monitor.'),
    cfg.StrOpt(
        'sentinel_password', secret=True,
        help='Password of the Sentinels themselves, when they require one.'),
    cfg.ListOpt(
        'cluster_nodes', default=[],
        help='host:port of one or more nodes of a Redis Cluster. When set, '
             'the driver discovers the other nodes from them and follows '
             'slot moves and failovers; each group\'s keys live in one '
             'slot, so groups spread over the shards. url then gives only '
             'the scheme (redis:// or rediss://) and credentials; db must '
             'be 0. Not together with sentinel_hosts.'),
    cfg.StrOpt(
        'prefix', default='heartbeat',
        help='Prefix of every key and of the change channel, so several '
             'clusters can share one redis.'),
    cfg.FloatOpt(
        'socket_timeout', default=2.0, min=0.05, max=300.0,
        help='Seconds one request may take before the connection counts as '
             'broken. Keep it below report_interval so a hung server does '
             'not hold up beats.'),
    cfg.FloatOpt(
        'reconnect_min_delay', default=0.1, min=0.01, max=60.0,
        help='First delay, in seconds, before reconnecting after the '
             'connection broke; doubled on each failure.'),
    cfg.FloatOpt(
        'reconnect_max_delay', default=2.0, min=0.01, max=300.0,
        help='Largest delay, in seconds, between two reconnect attempts. '
             'The newest report of every member is republished as soon as '
             'a reconnect succeeds.'),
    cfg.FloatOpt(
        'claim_timeout', min=0.0, max=3600.0,
        help='Seconds a joining member watches the record of a member id '
             'held by another process before it takes it over; a record '
             'that changes meanwhile belongs to a live member and the join '
             'is refused. Defaults to twice [heartbeat] report_interval.'),
    cfg.IntOpt(
        'member_ttl', default=86400, min=0, max=365 * 86400,
        help='Seconds, on the redis server\'s clock, after which the record '
             'of a member that stopped reporting is deleted (observers see '
             'it gone). 0 keeps records until the member id is reused.'),
    cfg.IntOpt(
        'gone_retention', default=3600, min=1, max=30 * 86400,
        help='Seconds deleted members are remembered for incremental '
             'readers; a reader whose cursor is older reads everything.'),
    cfg.IntOpt(
        'payload_limit', default=16384, min=256, max=4 * 1024 * 1024,
        help='Largest encoded report, in bytes, that a member may publish.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
