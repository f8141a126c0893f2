"""Options of the Prometheus endpoint of the daemons ([metrics]).

The endpoint is off by default.  It needs the optional ``prometheus-client``
package (``pip install 'heartbeat[metrics]'``); heartbeat runs without it.
The broker and the agent listen on ports of their own, so that both daemons
of one host can serve metrics at once.
"""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base
from heartbeat import exception

GROUP = cfg.OptGroup(
    'metrics', title='Prometheus metrics endpoint',
    help='An HTTP endpoint serving the daemon\'s metrics in the Prometheus '
         'text format on /metrics. Needs pip install '
         '\'heartbeat[metrics]\'.')

OPTS: list[cfg.Opt] = [
    cfg.BoolOpt(
        'enabled', default=False,
        help='Serve metrics over HTTP. Off by default: the endpoint has no '
             'authentication, bind it to a trusted address.'),
    cfg.HostAddressOpt(
        'host', default='127.0.0.1',
        help='Address the endpoint listens on.'),
    cfg.PortOpt(
        'broker_port', default=9464,
        help='Port of heartbeat-broker\'s endpoint; 0 picks a free port, '
             'which the broker logs.'),
    cfg.PortOpt(
        'agent_port', default=9465,
        help='Port of heartbeat-agent\'s endpoint (not the broker\'s: both '
             'daemons run on one host); 0 picks a free port, which the '
             'agent logs.'),
]

#: What to install when the endpoint is asked for and the client is absent.
INSTALL_HINT = "pip install 'heartbeat[metrics]'"


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]


def validate(conf: cfg.ConfigOpts) -> None:
    """Refuse an enabled endpoint without prometheus-client (ConfigError)."""
    if not conf.metrics.enabled:
        return
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise exception.ConfigError(
            '[metrics] enabled = true needs the prometheus-client package: '
            '%s, or set [metrics] enabled = false.' % INSTALL_HINT) from None
