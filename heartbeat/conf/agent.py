"""Options of the heartbeat-agent daemon ([agent]).

The defaults of the timeouts and of the score are the values of
ovirt-hosted-engine-ha's agent, so that a cluster behaves like a hosted
engine one unless told otherwise.  Every timing and score option is
mutable: the agent reads them again at each loop.
"""

from __future__ import annotations

from oslo_config import cfg

from heartbeat.conf import base
from heartbeat.conf import workload
from heartbeat import exception

GROUP = cfg.OptGroup(
    'agent', title='heartbeat-agent daemon',
    help='The agent decides where the protected workload runs: each loop '
         'it reads the broker\'s status, scores this host, starts, stops '
         'or hands over the workload and posts its state to the broker.')

OPTS: list[cfg.Opt] = [
    cfg.FloatOpt(
        'loop_interval', default=10.0, min=0.05, max=600.0, mutable=True,
        help='Seconds between two decisions of the agent. At most half of '
             '[heartbeat] service_down_time, so that peers see every '
             'state the agent posts.'),
    cfg.IntOpt(
        'migrate_threshold', default=800, min=1, max=100000, mutable=True,
        help='Points a peer\'s score must exceed this host\'s score by '
             'before the workload running here is handed over to it.'),
    cfg.IntOpt(
        'migrate_after', default=3, min=1, max=10000, mutable=True,
        help='Consecutive loops a peer must keep the better score (by '
             'migrate_threshold) before the workload is handed over, so '
             'that one bad reading never moves it.'),
    cfg.FloatOpt(
        'away_timeout', default=40.0, min=0.0, max=86400.0, mutable=True,
        help='Seconds of grace after the workload vanished without being '
             'stopped by the agent, before it is taken as unexpectedly '
             'down.'),
    cfg.FloatOpt(
        'unexpected_down_time', default=560.0, min=0.0, max=86400.0,
        mutable=True,
        help='Seconds this host scores 0 after its workload went down '
             'unexpectedly, so that a host that keeps losing the workload '
             'does not get it back at once.'),
    cfg.FloatOpt(
        'bad_health_timeout', default=300.0, min=0.0, max=86400.0,
        mutable=True,
        help='Seconds the workload may fail its health check while running '
             'before the agent stops it.'),
    cfg.FloatOpt(
        'start_timeout', default=600.0, min=0.0, max=86400.0, mutable=True,
        help='Seconds a started workload has to become healthy; after '
             'that it is stopped and the start counts as failed.'),
    cfg.FloatOpt(
        'stop_timeout', default=300.0, min=0.0, max=86400.0, mutable=True,
        help='Seconds the workload has to exit after [workload] '
             'stop_signal before it is killed.'),
    cfg.IntOpt(
        'max_start_failures', default=3, min=1, max=1000, mutable=True,
        help='Failed starts after which this host scores 0, until the '
             'oldest of them expires.'),
    cfg.FloatOpt(
        'start_failure_expiry', default=600.0, min=0.0, max=864000.0,
        mutable=True,
        help='Seconds after which a failed start no longer counts against '
             'this host.'),
    cfg.FloatOpt(
        'broker_timeout', default=5.0, min=0.01, max=600.0, mutable=True,
        help='Seconds the agent waits for each broker call; a loop never '
             'waits longer than this on the broker.'),
    cfg.StrOpt(
        'broker_socket', default='/run/heartbeat/broker.sock',
        help='Unix socket of the local broker; the same path as the '
             'broker\'s [broker] socket_path.'),
    cfg.StrOpt(
        'state_dir', default='/var/lib/heartbeat',
        help='Directory where the agent keeps the workload\'s pid file, so '
             'that a restarted agent adopts the running workload.'),
    cfg.IntOpt(
        'score_base', default=3400, min=1, max=1000000, mutable=True,
        help='Score of a host with no penalty.'),
    cfg.IntOpt(
        'penalty_network', default=1600, min=0, max=1000000, mutable=True,
        help='Points taken when no network target is reachable; a '
             'reachable fraction f takes (1 - f) times this.'),
    cfg.IntOpt(
        'penalty_cpu', default=1000, min=0, max=1000000, mutable=True,
        help='Points taken at a CPU load of cpu_load_high or more; loads '
             'between cpu_load_low and cpu_load_high take a linear share.'),
    cfg.FloatOpt(
        'cpu_load_low', default=0.4, min=0.0, max=100.0, mutable=True,
        help='Load average per CPU up to which the CPU costs no points.'),
    cfg.FloatOpt(
        'cpu_load_high', default=0.9, min=0.0, max=100.0, mutable=True,
        help='Load average per CPU from which the CPU costs penalty_cpu.'),
    cfg.FloatOpt(
        'cpu_window', default=900.0, min=0.0, max=86400.0, mutable=True,
        help='Seconds over which the CPU load readings are averaged before '
             'they are scored, so that a short burst does not move the '
             'workload.'),
    cfg.IntOpt(
        'penalty_memory', default=400, min=0, max=1000000, mutable=True,
        help='Points taken while less memory is available than [workload] '
             'memory_mb (not counted while the workload runs here).'),
    cfg.IntOpt(
        'penalty_failed_start', default=50, min=0, max=1000000,
        mutable=True,
        help='Points taken per failed start within start_failure_expiry.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    base.register(conf, GROUP, OPTS)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(GROUP, OPTS)]


def validate(conf: cfg.ConfigOpts) -> None:
    """Refuse [agent] and [workload] combinations that cannot work.

    Needs the [heartbeat], [agent] and [workload] options registered.
    Raises :class:`~heartbeat.exception.ConfigError` with one line that
    names the option to change.
    """
    agent = conf.agent
    down_time = conf.heartbeat.service_down_time
    if agent.loop_interval > down_time / 2:
        raise exception.ConfigError(
            '[agent] loop_interval (%gs) must be at most half of '
            '[heartbeat] service_down_time (%gs): lower loop_interval to '
            '%gs or less.' % (agent.loop_interval, down_time, down_time / 2))
    if agent.cpu_load_low >= agent.cpu_load_high:
        raise exception.ConfigError(
            '[agent] cpu_load_low (%g) must be below [agent] cpu_load_high '
            '(%g).' % (agent.cpu_load_low, agent.cpu_load_high))
    workload.validate(conf)
