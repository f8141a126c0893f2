"""heartbeat-agent as an oslo.service service.

:class:`AgentService` builds the broker client, the workload launcher, the
health checker and the :class:`~heartbeat.agent.loop.AgentLoop` in
:meth:`~heartbeat.service.daemon.ReloadableService.start`, in the process
that serves.  A SIGHUP re-reads the config files in place: the loop reads
its options live, so the new loop_interval, timeouts and score weights
apply from the next turn; options that need a restart are logged.
Stopping the agent never stops the workload: the next agent adopts it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.agent.loop import AgentLoop
from heartbeat.agent import settings as settings_mod
from heartbeat.broker.client import BrokerClient
from heartbeat import conf as hb_conf
from heartbeat.conf import agent as agent_conf
from heartbeat.conf import fencing as fencing_conf
from heartbeat.conf import metrics as metrics_conf
from heartbeat.conf import workload as workload_conf
from heartbeat import exception
from heartbeat import metrics
from heartbeat.service.daemon import ReloadableService
from heartbeat.service import notify
from heartbeat.service.reload import Area
from heartbeat.service.reload import ReloadResult
from heartbeat.workload.health import HealthChecker
from heartbeat.workload.process import WorkloadProcess

if TYPE_CHECKING:
    from heartbeat.metrics.endpoint import MetricsEndpoint

LOG = logging.getLogger(__name__)

PROG = 'heartbeat-agent'

#: Loop intervals without a new decision after which the loop is hung.
LOOP_STALL_TURNS = 10


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Every option the agent reads."""
    hb_conf.register_opts(conf)
    agent_conf.register_opts(conf)
    workload_conf.register_opts(conf)
    fencing_conf.register_opts(conf)
    metrics_conf.register_opts(conf)


def validate(conf: cfg.ConfigOpts) -> None:
    """Refuse option combinations that cannot work (ConfigError)."""
    hb_conf.validate(conf)
    agent_conf.validate(conf)
    metrics_conf.validate(conf)
    # Reads every value now: one out of its range is refused here, before
    # the launcher forks, not in the worker.
    settings_mod.from_conf(conf)
    if conf.workload.log_file:
        directory = os.path.dirname(os.path.abspath(conf.workload.log_file))
        if not os.path.isdir(directory):
            raise exception.ConfigError(
                'Directory %s of [workload] log_file does not exist.'
                % directory)


def _areas() -> list[Area]:
    return [(group.name, opts) for group, opts in (
        *agent_conf.list_opts(), *workload_conf.list_opts())]


def build_loop(conf: cfg.ConfigOpts) -> AgentLoop:
    """The agent loop of ``conf``, not yet started."""
    w = conf.workload
    workload = WorkloadProcess(
        workload_conf.command(conf), conf.agent.state_dir,
        sanlock_run_dir=conf.fencing.sanlock_run_dir,
        stop_signal=workload_conf.stop_signal(conf),
        log_file=w.log_file or os.path.join(conf.agent.state_dir,
                                            'workload.log'),
        env=notify.child_environ())
    health = HealthChecker(
        command=w.health_command, url=w.health_url,
        interval=lambda: conf.workload.health_interval,
        timeout=lambda: conf.workload.health_timeout)
    client = BrokerClient(conf.agent.broker_socket,
                          timeout=conf.agent.broker_timeout)
    return AgentLoop(conf, client, workload, health)


class AgentService(ReloadableService):
    """The agent loop as one oslo.service service."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf, register_opts, _areas, PROG,
                         validate=validate)
        self.loop: AgentLoop | None = None
        self.metrics: MetricsEndpoint | None = None
        self._seen: object = None
        self._seen_at = time.monotonic()

    def _start(self) -> None:
        register_opts(self.conf)
        validate(self.conf)
        self.loop = build_loop(self.conf)
        self.loop.start()
        self.metrics = metrics.serve(self.conf, self.conf.metrics.agent_port,
                                     agent=self.loop)
        LOG.info('%s started: broker %s, workload %r, loop every %.1fs.',
                 PROG, self.conf.agent.broker_socket,
                 self.conf.workload.command, self.conf.agent.loop_interval)

    def alive(self) -> str | None:
        """None while the agent loop keeps turning.

        The loop makes a new decision every loop_interval (a slow broker
        call delays a turn by its timeout only); a loop without a new
        decision for LOOP_STALL_TURNS intervals, and at least a minute, is
        hung.
        """
        loop = self.loop
        if loop is None:
            return 'the agent loop is not running'
        now = time.monotonic()
        last = loop.last
        if last is not self._seen:
            self._seen, self._seen_at = last, now
            return None
        limit = max(60.0, LOOP_STALL_TURNS * self.conf.agent.loop_interval)
        if now - self._seen_at > limit:
            return 'the agent loop made no decision for %.0fs' % (
                now - self._seen_at)
        return None

    def _stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if self.loop is not None:
            self.loop.stop()
            self.loop = None

    def _reloaded(self, result: ReloadResult | None,
                  error: str | None) -> None:
        super()._reloaded(result, error)
        if result is not None and self.loop is not None:
            self.loop.wake()
