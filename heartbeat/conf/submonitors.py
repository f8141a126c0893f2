"""Options of the broker's submonitors ([submonitors])."""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base

GROUP = cfg.OptGroup(
    'submonitors', title='Broker submonitors',
    help='Plugins (entry point "heartbeat.submonitors") that the broker runs '
         'each on its own interval; their readings are part of the status '
         'the agent scores.')

OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        'enabled',
        default=['network', 'cpu_load', 'free_memory', 'storage_domain'],
        help='Submonitors to run, by entry-point name: network, cpu_load, '
             'free_memory, storage_domain, workload_health.'),
    cfg.FloatOpt(
        'interval', default=10.0, min=0.05, max=3600.0, mutable=True,
        help='Default seconds between two readings of a submonitor.'),
    cfg.FloatOpt(
        'timeout', default=5.0, min=0.05, max=600.0, mutable=True,
        help='Seconds one probe (ping, TCP connect, command, HTTP request) '
             'may take before it counts as failed.'),
    cfg.StrOpt(
        'network_method', default='none', mutable=True,
        choices=[('ping', 'ICMP echo with the ping command'),
                 ('tcp', 'a TCP connect to host:port'),
                 ('none', 'always report the network as fine')],
        help='How the network submonitor probes its targets.'),
    cfg.ListOpt(
        'network_targets', default=[], mutable=True,
        help='Addresses the network submonitor probes: hosts for ping, '
             'host:port for tcp (typically the gateway).'),
    cfg.IntOpt(
        'network_probes', default=5, min=1, max=100, mutable=True,
        help='Probes per target and reading; the reading is the fraction '
             'that succeeded.'),
    cfg.StrOpt(
        'workload_health_command', mutable=True,
        help='Command whose exit status 0 means the workload is healthy '
             '(run without a shell; split on spaces).'),
    cfg.URIOpt(
        'workload_health_url', schemes=['http', 'https'], mutable=True,
        help='URL whose 2xx answer means the workload is healthy. Used when '
             'no command is configured.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]
