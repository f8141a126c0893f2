"""Options every heartbeat member and observer share ([heartbeat])."""

from __future__ import annotations

import socket

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'heartbeat',
    title='Liveness and service group options',
    help='How often members report, when they count as down, and which '
         'driver carries the reports.')

MAX_HOST_ID = 2000

OPTS = [
    cfg.FloatOpt(
        'report_interval', default=10.0, min=0.05, max=3600.0,
        help='Seconds between two reports of a member. The first report is '
             'sent as soon as the member joins.'),
    cfg.FloatOpt(
        'service_down_time', default=60.0, min=0.1, max=86400.0,
        help='Seconds without a change of a member\'s report, measured on the '
             'observer\'s own monotonic clock, after which the member is '
             'judged down. Must be at least twice report_interval.'),
    cfg.FloatOpt(
        'phi_threshold', min=1.0, max=50.0,
        help='Opt-in earlier Down by suspicion: a member is also judged '
             'down once the phi-accrual suspicion of its silence (the '
             '"suspicion" of the status; phi 3 means one chance in 1,000 that '
             'the member is merely slow, given its own rhythm of reports) '
             'reaches this value, if that comes before service_down_time. '
             'Unset (the default): down by service_down_time alone. Not '
             'used where the backend tells liveness on its own clock (the '
             'redis driver), which has no rhythm of reports.'),
    cfg.StrOpt(
        'driver', default='storage',
        help='Name of the driver that carries reports, as registered under '
             'the "heartbeat.drivers" entry point: storage (shared metadata '
             'file or block device, the default), redis or tooz.'),
    cfg.StrOpt(
        'host', default=socket.gethostname(), sample_default='<hostname>',
        help='Name of this host, shown to observers.'),
    cfg.IntOpt(
        'host_id', min=1, max=MAX_HOST_ID,
        help='Numeric identity of this host in the cluster, 1 to 2000. The '
             'storage driver writes the slot of this id and sanlock uses it '
             'for its delta lease; each host must have its own. Required by '
             'the storage driver.'),
    cfg.StrOpt(
        'member_id',
        help='Member name used by heartbeat-member and the daemons when none '
             'is given on the command line. Defaults to the host option.'),
]


def register(conf: cfg.ConfigOpts, group: cfg.OptGroup,
             opts: list[cfg.Opt]) -> None:
    """Register ``opts`` under a fresh copy of ``group`` on ``conf``.

    oslo.config keeps overrides inside the OptGroup object, so one module
    level OptGroup shared by several ConfigOpts would leak overrides from
    one to another; every conf gets its own copy instead.
    """
    fresh = cfg.OptGroup(group.name, title=group.title, help=group.help)
    conf.register_group(fresh)
    conf.register_opts(opts, group=group.name)


def register_opts(conf: cfg.ConfigOpts) -> None:
    register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
