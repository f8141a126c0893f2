"""Options of the protected workload ([workload]).

The workload is any command; the agent starts it as the holder of the
sanlock lease, so it runs on at most one host of the cluster.
"""

from __future__ import annotations

import shlex
import signal

from oslo_config import cfg

from heartbeat.conf import base
from heartbeat import exception

GROUP = cfg.OptGroup(
    'workload', title='The protected workload',
    help='The command the agent keeps running on exactly one host, how it '
         'is stopped and how its health is checked.')

STOP_SIGNALS = ('TERM', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2')

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        'command',
        help='Command line of the workload, split like a POSIX shell '
             'would (quotes group words) but run without a shell. '
             'Required by heartbeat-agent.'),
    cfg.StrOpt(
        'stop_signal', default='TERM', mutable=True,
        choices=[(name, 'SIG%s' % name) for name in STOP_SIGNALS],
        help='Signal that asks the workload to exit; [agent] stop_timeout '
             'later it is killed with SIGKILL.'),
    cfg.StrOpt(
        'health_command', mutable=True,
        help='Command whose exit status 0 means the workload is healthy, '
             'split like command. At most one of health_command and '
             'health_url; with neither, a running workload counts as '
             'healthy.'),
    cfg.URIOpt(
        'health_url', schemes=['http', 'https'], mutable=True,
        help='URL whose 2xx answer means the workload is healthy.'),
    cfg.FloatOpt(
        'health_interval', default=10.0, min=0.05, max=3600.0,
        mutable=True,
        help='Seconds between two health checks of the running workload.'),
    cfg.FloatOpt(
        'health_timeout', default=5.0, min=0.05, max=3600.0, mutable=True,
        help='Seconds one health check may take before it counts as '
             'failed.'),
    cfg.IntOpt(
        'memory_mb', default=0, min=0, max=1024 * 1024 * 1024,
        mutable=True,
        help='MiB of memory the workload needs: a host with less '
             'available loses [agent] penalty_memory points. 0: no check.'),
    cfg.StrOpt(
        'log_file',
        help='File the workload\'s stdout and stderr are appended to. '
             'Default: workload.log in [agent] state_dir (never the '
             'agent\'s own output, which ends with the agent while the '
             'workload keeps running).'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]


def _split(option: str, value: str | None) -> list[str]:
    try:
        return shlex.split(value or '')
    except ValueError as err:
        raise exception.ConfigError(
            '[workload] %s cannot be split into words: %s.'
            % (option, err)) from err


def command(conf: cfg.ConfigOpts) -> list[str]:
    """The workload's argv from [workload] command (may be empty)."""
    return _split('command', conf.workload.command)


def health_command(conf: cfg.ConfigOpts) -> list[str]:
    """The health check's argv from [workload] health_command (or [])."""
    return _split('health_command', conf.workload.health_command)


def stop_signal(conf: cfg.ConfigOpts) -> signal.Signals:
    """The signal [workload] stop_signal names."""
    return signal.Signals['SIG' + conf.workload.stop_signal]


def validate(conf: cfg.ConfigOpts) -> None:
    """Refuse [workload] values that cannot work (one line, option named)."""
    if not command(conf):
        raise exception.ConfigError(
            '[workload] command is empty: set the command line of the '
            'workload to protect.')
    health_command(conf)
    if conf.workload.health_command and conf.workload.health_url:
        raise exception.ConfigError(
            '[workload] health_command and [workload] health_url are both '
            'set: keep one of them.')
