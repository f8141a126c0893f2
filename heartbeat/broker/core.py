"""The broker itself: everything a host's broker owns, wired together.

:class:`Broker` owns the status store and its writer thread (with the
driver and the storage connection), the domain monitor, the submonitors and
the fencer.  Its public methods are what the RPC methods call; every one of
them answers from memory or hands work to a background thread, except the
fencing operations, which wait for the local sanlock daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import os
import socket
import threading
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import connection as connection_mod
from heartbeat.broker.domain import DomainMonitor
from heartbeat.broker import status as status_mod
from heartbeat.broker.store import StatusStore
from heartbeat.broker.submonitors import base as sub_base
from heartbeat.broker.submonitors import runner as sub_runner
from heartbeat.broker.writer import WriterThread
from heartbeat import clock as clock_mod
from heartbeat import conf as hb_conf
from heartbeat.conf import broker as broker_conf
from heartbeat.conf import fencing as fencing_conf
from heartbeat.conf import submonitors as submonitors_conf
from heartbeat import drivers
from heartbeat.drivers.base import Driver
from heartbeat import exception
from heartbeat import fencing
from heartbeat.fencing.base import Fencer
from heartbeat.service.reload import ReloadResult

LOG = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAINTENANCE_MODES = status_mod.MAINTENANCE_MODES


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Every option the broker reads."""
    hb_conf.register_opts(conf)
    broker_conf.register_opts(conf)
    fencing_conf.register_opts(conf)
    submonitors_conf.register_opts(conf)


class Broker:
    """One host's broker; see the module docstring."""

    def __init__(self, conf: cfg.ConfigOpts, driver: Driver | None = None,
                 fencer: Fencer | None = None,
                 clock: clock_mod.Clock | Callable[[], float] = (
                     clock_mod.MONOTONIC)) -> None:
        register_opts(conf)
        self.conf = conf
        # One clock (time and waits) for the store and every loop.
        self.clock = clock = clock_mod.as_clock(clock)
        hb = conf.heartbeat
        self.member_id: str = hb.member_id or hb.host
        self.driver = driver if driver is not None else drivers.load(conf)
        self.connection = connection_mod.load(conf)
        self.store = StatusStore(
            conf.broker.group, self.member_id, hb.service_down_time,
            stall_after=lambda: conf.broker.storage_stall_after, clock=clock)
        self.writer = WriterThread(
            self.store, self.driver, self.connection,
            report_interval=lambda: conf.heartbeat.report_interval,
            peer_interval=lambda: (conf.broker.peer_refresh_interval
                                   or conf.heartbeat.report_interval),
            retry_interval=lambda: conf.broker.connect_retry_interval,
            clock=clock, host_id=hb.host_id)
        self.domain = DomainMonitor(
            self.connection.validate,
            interval=lambda: conf.broker.domain_monitor_interval,
            timeout=lambda: conf.broker.domain_probe_timeout, clock=clock)
        self.fencer = fencer if fencer is not None else fencing.load(conf)
        context = sub_base.Context(domain=self.domain,
                                   agent_health=self._agent_health)
        self.submonitors = sub_runner.SubmonitorRunner(
            sub_runner.load(conf, conf.submonitors.enabled, context),
            clock=clock)
        self.started_at = clock()
        self._reload_lock = threading.Lock()
        self._reloads: dict[str, Any] = {
            'count': 0, 'failed': 0, 'last_at': None, 'applied': [],
            'restart_needed': [], 'error': None}

    def _agent_health(self) -> Mapping[str, Any] | None:
        """The workload health the agent posted, if it posts one."""
        agent = self.store.posted.payload.get('agent')
        health = agent.get('health') if isinstance(agent, Mapping) else None
        return health if isinstance(health, Mapping) else None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        if not self.fencer.safe:
            LOG.warning('Fencer %r protects nothing: do not run a real '
                        'workload with it.', self.fencer.name)
        self.writer.start()
        self.submonitors.start()
        self.fencer.start()
        if self.conf.fencing.join_on_start:
            try:
                self.fencer.join()
            except exception.HeartbeatError as err:
                LOG.error('Could not join the lockspace at start: %s (the '
                          'agent may retry with lockspace_join).', err)

    def stop(self) -> None:
        self.domain.stop()
        self.submonitors.stop()
        self.fencer.stop()
        self.writer.stop(timeout=self.conf.broker.storage_stall_after)

    def reschedule(self) -> None:
        """Make every periodic thread re-read its interval now."""
        self.writer.reschedule()
        self.domain.reschedule()
        self.submonitors.reschedule()

    def options_reloaded(self, result: ReloadResult | None,
                         error: str | None = None) -> None:
        """Record a configuration reload (or why it was refused), apply it.

        Mutable options are read live everywhere; what is left to do is to
        wake the threads that sleep for an interval that may have changed.
        """
        with self._reload_lock:
            self._reloads['last_at'] = self.clock()
            self._reloads['error'] = error
            if result is None:
                self._reloads['failed'] += 1
            else:
                self._reloads['count'] += 1
                self._reloads['applied'] = list(result.applied)
                # Compared with the values in use since the start, so the
                # newest list is complete.
                self._reloads['restart_needed'] = list(
                    result.restart_needed)
        if result is not None:
            self.reschedule()

    def reload_view(self) -> status_mod.ReloadStatus:
        """Reloads so far and what the newest one changed."""
        with self._reload_lock:
            out = dict(self._reloads)
        last_at = out.pop('last_at')
        return status_mod.ReloadStatus(
            count=out['count'], failed=out['failed'],
            applied=list(out['applied']),
            restart_needed=list(out['restart_needed']), error=out['error'],
            last_age_s=(None if last_at is None
                        else round(self.clock() - last_at, 3)))

    # -- RPC methods -------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        return {'pong': True, 'protocol': PROTOCOL_VERSION,
                'pid': os.getpid(), 'member_id': self.member_id,
                'uptime_s': round(self.clock() - self.started_at, 3)}

    def put_state(self, state: str | None, score: int | None = None,
                  payload: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
        """Post the host's state; the writer publishes it.

        Raises PayloadTooLarge, and keeps the state posted before, when the
        report of this one would not fit the driver's payload limit.
        """
        payload = payload or {}
        self.writer.check_fits(state, score, payload)
        posted = self.store.put_state(state, score, payload)
        return {'version': posted.version}

    def status(self) -> status_mod.BrokerStatus:
        """Everything the broker knows, typed, from memory."""
        conf = self.conf
        view = self.store.view()
        return status_mod.BrokerStatus(
            protocol=PROTOCOL_VERSION,
            host=status_mod.HostInfo(
                host_id=conf.heartbeat.host_id, host=conf.heartbeat.host,
                member_id=self.member_id, pid=os.getpid(),
                uptime_s=round(self.clock() - self.started_at, 3)),
            own=view.own,
            writer=view.writer,
            storage=status_mod.StorageInfo(
                driver=self.driver.name, connection=self.connection.name,
                path=conf.heartbeat_storage.path),
            peers=view.peers,
            domain=self.domain.view(),
            submonitors=self.submonitors.view(),
            fencing=_fencing(self.fencer.view()),
            maintenance=status_mod.MaintenanceStatus(
                local=view.own.local_maintenance,
                global_mode=view.global_maintenance,
                global_pending=view.global_pending,
                global_error=view.global_error,
                global_supported=self.writer.supports_global_maintenance),
            reload=self.reload_view(),
            options=status_mod.OptionsInUse(
                report_interval=conf.heartbeat.report_interval,
                service_down_time=conf.heartbeat.service_down_time,
                peer_refresh_interval=(conf.broker.peer_refresh_interval
                                       or conf.heartbeat.report_interval),
                storage_stall_after=conf.broker.storage_stall_after,
                domain_monitor_interval=conf.broker.domain_monitor_interval,
                submonitor_interval=conf.submonitors.interval,
                submonitor_timeout=conf.submonitors.timeout,
                allowed_uids=list(conf.broker.allowed_uids),
                allowed_gids=list(conf.broker.allowed_gids)),
        )

    def get_status(self) -> dict[str, Any]:
        return self.status().to_dict()

    def start_domain_monitor(self) -> dict[str, Any]:
        return status_mod.to_dict(self.domain.start())

    def stop_domain_monitor(self) -> dict[str, Any]:
        return status_mod.to_dict(self.domain.stop())

    def set_maintenance(self, mode: str) -> dict[str, Any]:
        """Enter or leave maintenance.

        ``local``: this host; ``global``: the whole cluster (a
        cluster-wide flag of the driver);
        ``none``: clear both.  A global write that fails is retried
        until it is written or replaced; meanwhile get_status shows it in
        ``maintenance.global_pending`` and why in ``global_error``.
        """
        if mode not in MAINTENANCE_MODES:
            raise exception.ConfigError(
                'Unknown maintenance mode %r; use one of: %s.'
                % (mode, ', '.join(MAINTENANCE_MODES)))
        if mode == 'global' and not self.writer.supports_global_maintenance:
            raise exception.ConfigError(
                'Global maintenance needs cluster-wide flags, which the %s '
                'driver cannot hold; use [heartbeat] driver = storage or '
                'redis.' % self.driver.name)
        if mode == 'local':
            self.store.set_local_maintenance(True)
        else:
            self.store.set_local_maintenance(False)
            if self.writer.supports_global_maintenance:
                self.store.request_global_maintenance(mode)
        return {'local_maintenance': mode == 'local',
                'global_maintenance_requested': (
                    mode if mode != 'local' else None)}

    def lockspace_join(self) -> dict[str, Any]:
        return status_mod.to_dict(_fencing(self.fencer.join()))

    def lockspace_leave(self) -> dict[str, Any]:
        return status_mod.to_dict(_fencing(self.fencer.leave()))

    def acquire_lease(self, pid: int) -> dict[str, Any]:
        return status_mod.to_dict(_fencing(self.fencer.acquire(pid)))

    def release_lease(self, pid: int) -> dict[str, Any]:
        return status_mod.to_dict(_fencing(self.fencer.release(pid)))


def _fencing(view: Any) -> status_mod.FencingStatus:
    """A fencer's view, typed (fencers may still answer plain dicts)."""
    if isinstance(view, status_mod.FencingStatus):
        return view
    return status_mod.from_dict(status_mod.FencingStatus, view, 'fencing')


def check_config(conf: cfg.ConfigOpts) -> None:
    """Fail fast, before the launcher forks, on what start() would reject.

    Loads every configured plugin without starting anything, so that a
    typo is one clear error at startup instead of a restart loop.
    """
    register_opts(conf)
    if conf.heartbeat.host_id is None:
        raise exception.ConfigError(
            'heartbeat-broker needs [heartbeat] host_id (1..2000), unique '
            'per host: it names the host\'s slot and its sanlock host id.')
    directory = os.path.dirname(os.path.abspath(conf.broker.socket_path))
    if not os.path.isdir(directory):
        raise exception.ConfigError(
            'Directory %s of [broker] socket_path does not exist; create it '
            '(systemd: RuntimeDirectory=heartbeat) or change the option.'
            % directory)
    check_socket_free(conf.broker.socket_path)
    drivers.load(conf).check()
    connection_mod.load(conf)
    sub_runner.load(conf, conf.submonitors.enabled, sub_base.Context())
    if conf.fencing.fencer == 'sanlock':
        from heartbeat.fencing import binding

        lease_path = conf.fencing.lease_path or ''
        if not os.path.isabs(lease_path):
            raise exception.ConfigError(
                '[fencing] lease_path must be an absolute path for the '
                'sanlock fencer (got %r): sanlock opens it itself, from its '
                'own working directory.' % lease_path)

        binding.load(conf.fencing.sanlock_run_dir)
    elif conf.fencing.fencer == 'flock':
        check_flock(conf)


def check_flock(conf: cfg.ConfigOpts) -> None:
    """ConfigError if the flock fencer's lease file cannot be exact."""
    from heartbeat.fencing import kernel_lock

    reason = kernel_lock.refusal(conf.fencing.lease_path)
    if reason is not None:
        raise exception.ConfigError(
            '[fencing] lease_path for fencer = flock: %s. Use a local '
            'filesystem, or fencer = sanlock across machines.' % reason)


def check_socket_free(path: str) -> None:
    """ConfigError if a broker already answers on ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return  # nobody listens (or no socket yet): ours to take
    finally:
        probe.close()
    raise exception.ConfigError(
        'Another heartbeat-broker already listens on %s ([broker] '
        'socket_path): stop it first, or give this one another socket, '
        'host_id and config.' % path)
