"""Runs the broker service in a supervised worker process.

oslo.service's threading backend runs a service in a cotyledon worker whose
SIGHUP handling stops the worker and forks a new one.  For the broker that
would leave the sanlock lockspace, mark the host's slot as left and rejoin:
seconds without protection for a configuration change.  :func:`launch`
uses the same process model (a master that supervises one worker, respawns
it if it dies, and forwards SIGTERM and SIGHUP), with a worker whose SIGHUP
calls the service's in-place :meth:`~BrokerService.reload` instead.

Import this only from a daemon's main(), after
:func:`heartbeat.cmd.init_backend`.
"""

from __future__ import annotations

import logging as std_logging
from typing import Any

import cotyledon
from cotyledon import types as cotyledon_types
from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import opts as service_opts

from heartbeat.broker.service import BrokerService

LOG = logging.getLogger(__name__)


class BrokerWorker(cotyledon.Service):
    """The worker process: runs the service, reloads it in place on SIGHUP.

    cotyledon calls :meth:`run` in a thread of the worker, :meth:`reload`
    on SIGHUP and :meth:`terminate` on SIGTERM (an exception in any of them
    ends the worker, and the master starts a new one).
    """

    name = 'heartbeat-broker'

    def __init__(self, worker_id: cotyledon_types.WorkerId,
                 service: BrokerService) -> None:
        super().__init__(worker_id)
        self.service = service

    def run(self) -> None:
        conf = self.service.conf
        if conf.log_options:
            conf.log_opt_values(LOG, std_logging.DEBUG)
        self.service.start()
        self.service.wait()

    def reload(self) -> None:
        # cotyledon drops a SIGHUP that arrives while this runs: return at
        # once and let the service reload in its own thread.
        self.service.request_reload()

    def terminate(self) -> None:
        self.service.stop()


def launch(conf: cfg.ConfigOpts, service: BrokerService) -> int:
    """Run ``service`` until SIGTERM; return the exit status."""
    service_opts.register_service_opts(conf)
    manager: Any = cotyledon.ServiceManager(
        graceful_shutdown_timeout=conf.graceful_shutdown_timeout)
    manager.add(BrokerWorker, workers=1, args=(service,))
    try:
        manager.run()
    except SystemExit as exc:
        # The master ends with sys.exit() once its workers are gone.
        return exc.code if isinstance(exc.code, int) else 0
    return 0
