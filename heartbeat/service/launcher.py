"""Runs a daemon's service in a supervised worker process.

oslo.service's threading backend runs a service in a cotyledon worker whose
SIGHUP handling stops the worker and forks a new one.  For the broker that
would leave the sanlock lockspace, mark the host's slot as left and rejoin:
seconds without protection for a configuration change.  :func:`launch`
uses the same process model (a master that supervises one worker, respawns
it if it dies, and forwards SIGTERM and SIGHUP), with a worker whose SIGHUP
calls the service's in-place reload instead.

A worker whose service refuses its options at start (ConfigError) exits
with :data:`EXIT_CONFIG`, and the master then ends the daemon instead of
forking it again: a new worker would fail the same way, once a second,
forever.  Any other death of the worker is respawned.

Import this only from a daemon's main(), after
:func:`heartbeat.cmd.init_backend`.
"""

from __future__ import annotations

import logging as std_logging
import threading
from typing import Any

import cotyledon
from cotyledon import types as cotyledon_types
from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import opts as service_opts

from heartbeat import exception
from heartbeat.service.daemon import Daemon
from heartbeat.service import notify

LOG = logging.getLogger(__name__)

#: Exit status of a worker whose service refused its configuration
#: (EX_CONFIG of sysexits.h); the master ends rather than respawn it.
EXIT_CONFIG = 78

#: What :func:`launch` returns when the service refused its configuration
#: (the status every heartbeat command uses for bad options).
EXIT_REFUSED = 2


class DaemonWorker(cotyledon.Service):
    """The worker process: runs the service, reloads it in place on SIGHUP.

    cotyledon calls :meth:`run` in a thread of the worker, :meth:`reload`
    on SIGHUP and :meth:`terminate` on SIGTERM (an exception in any of them
    ends the worker, and the master starts a new one).  :func:`launch`
    names the worker after the service.
    """

    def __init__(self, worker_id: cotyledon_types.WorkerId,
                 service: Daemon) -> None:
        super().__init__(worker_id)
        self.service = service

    def run(self) -> None:
        conf = self.service.conf
        if conf.log_options:
            conf.log_opt_values(LOG, std_logging.DEBUG)
        try:
            self.service.start()
        except (exception.ConfigError, cfg.Error) as err:
            LOG.error('%s cannot start: %s', self.service.name, err)
            notify.notify('STATUS=cannot start: %s' % err)
            # cotyledon ends the worker with this status.
            raise SystemExit(EXIT_CONFIG) from None
        # Only now does the daemon serve: systemd's Type=notify waits for it.
        notify.notify('READY=1', 'STATUS=serving')
        watchdog = notify.Watchdog(self.service.alive,
                                   name='%s-watchdog' % self.service.name)
        watchdog.start()
        try:
            self.service.wait()
        finally:
            watchdog.stop()

    def reload(self) -> None:
        # cotyledon drops a SIGHUP that arrives while this runs: return at
        # once and let the service reload in its own thread.
        self.service.request_reload()

    def terminate(self) -> None:
        notify.notify('STOPPING=1')
        self.service.stop()


def worker_class(name: str) -> type[DaemonWorker]:
    """A DaemonWorker named ``name`` (cotyledon reads the class's name)."""
    return type('DaemonWorker', (DaemonWorker,), {'name': name})


def launch(conf: cfg.ConfigOpts, service: Daemon) -> int:
    """Run ``service`` until SIGTERM; return the exit status.

    The status is :data:`EXIT_REFUSED` when the service's start raised
    ConfigError (the error is logged once, without a traceback), else the
    master's own (0 after SIGTERM).  Call it once per process: cotyledon
    allows one supervisor per process.
    """
    service_opts.register_service_opts(conf)
    manager: Any = cotyledon.ServiceManager(
        graceful_shutdown_timeout=conf.graceful_shutdown_timeout)
    refused = threading.Event()

    def on_dead_worker(service_id: Any, worker_id: Any,
                       exit_code: int) -> None:
        # Runs in the master's supervisor thread, before it forks again;
        # shutdown() makes that thread return instead.
        if exit_code == EXIT_CONFIG:
            refused.set()
            manager.shutdown()

    manager.register_hooks(on_dead_worker=on_dead_worker)
    manager.add(worker_class(service.name), workers=1, args=(service,))
    # READY=1 is the worker's to send, once it serves (not the master's).
    notify.claim()
    try:
        manager.run()
    except SystemExit as exc:
        # The master ends with sys.exit() once its workers are gone.
        if refused.is_set():
            return EXIT_REFUSED
        return exc.code if isinstance(exc.code, int) else 0
    return 0
