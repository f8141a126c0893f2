"""Options of the event monitor (poll to push) ([heartbeat_monitor])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup(
    'heartbeat_monitor', title='Event monitor (poll to push)',
    help='The monitor behind servicegroup.API.watch(): one fetch loop per '
         'driver reads the watched groups and pushes events to '
         'subscribers.')

#: poll_interval defaults to report_interval divided by this.
POLL_FRACTION = 4.0

OPTS: list[cfg.Opt] = [
    cfg.FloatOpt(
        'poll_interval', min=0.01, max=3600.0,
        sample_default='<report_interval / 4>',
        help='Seconds between two reads of the watched groups. Defaults to '
             'a quarter of [heartbeat] report_interval. A member is seen '
             'down at most this much later than service_down_time after '
             'its last report; drivers that push changes are read at once '
             'as well.'),
    cfg.FloatOpt(
        'push_batch_interval', default=0.25, min=0.0, max=10.0,
        help='Seconds the monitor waits at most after a read it made for a '
             'pushed change before it reads again for the next pushes, so '
             'that pushes arriving meanwhile are read together (the '
             'driver\'s listener tells them together too). The first '
             'change after a quiet spell is read at once; one during a '
             'burst reaches subscribers this much later at worst. Down '
             'detection does not depend on it. 0 reads at every push.'),
    cfg.IntOpt(
        'subscriber_queue_size', default=1000, min=1, max=1000000,
        help='Events that may wait for one subscriber before its queue '
             'coalesces them per member (the newest status wins; the count '
             'of coalesced events is kept). Memory stays bounded by the '
             'number of members either way.'),
    cfg.FloatOpt(
        'slow_subscriber_warning', default=1.0, min=0.0, max=3600.0,
        help='Log a warning when a subscriber callback takes longer than '
             'this many seconds for one event. A slow subscriber delays '
             'only itself.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def poll_interval(conf: cfg.ConfigOpts) -> float:
    """The configured poll interval, or its default."""
    value: float | None = conf.heartbeat_monitor.poll_interval
    if value is None:
        return float(conf.heartbeat.report_interval) / POLL_FRACTION
    return value


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
