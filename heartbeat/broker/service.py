"""heartbeat-broker as an oslo.service service.

:class:`BrokerService` builds everything in :meth:`BrokerService.start`, in
the process that serves, never before the launcher forks.  A SIGHUP calls
:meth:`BrokerService.reload`: the config files are checked and the mutable
options applied in place, while the broker keeps its process, its storage
connection, its sanlock lockspace and lease, and its slot (stopping would
mark the host as left and leave the lockspace: seconds without
protection).  Options that cannot change at run time are logged as needing
a restart.  The lifecycle and the reload are
:class:`~heartbeat.service.daemon.ReloadableService`'s; see
:mod:`heartbeat.service.launcher` for the process side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oslo_config import cfg
from oslo_log import log as logging

from heartbeat.broker import api
from heartbeat.broker.client import BrokerClient
from heartbeat.broker import core
from heartbeat.broker import protocol
from heartbeat.broker.server import Authorizer
from heartbeat.broker.server import ConnectionLimits
from heartbeat.broker.server import RPCServer
from heartbeat import conf as hb_conf
from heartbeat.conf import metrics as metrics_conf
from heartbeat.conf import opts as hb_opts
from heartbeat import exception
from heartbeat import metrics
from heartbeat.metrics.timing import Timings
from heartbeat.service.daemon import ReloadableService
from heartbeat.service.reload import Area
from heartbeat.service.reload import ReloadResult

if TYPE_CHECKING:
    from heartbeat.metrics.endpoint import MetricsEndpoint

LOG = logging.getLogger(__name__)

PROG = 'heartbeat-broker'

#: Seconds the watchdog's ping of the broker's own socket may take.
ALIVE_TIMEOUT = 5.0


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Every option the broker daemon reads."""
    core.register_opts(conf)
    metrics_conf.register_opts(conf)


def validate(conf: cfg.ConfigOpts) -> None:
    """Refuse option combinations that cannot work (ConfigError)."""
    hb_conf.validate(conf)
    metrics_conf.validate(conf)


def _areas() -> list[Area]:
    return [(group.name, opts) for group, opts in hb_opts.list_opts()]


class BrokerService(ReloadableService):
    """The broker and its RPC server as one oslo.service service."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf, register_opts, _areas, PROG,
                         validate=validate)
        # Built before the launcher forks: a missing prometheus-client is
        # refused here, in one line, not in the worker.
        register_opts(conf)
        metrics_conf.validate(conf)
        self.broker: core.Broker | None = None
        self.server: RPCServer | None = None
        self.metrics: MetricsEndpoint | None = None

    def _start(self) -> None:
        conf = self.conf
        # A second broker on the same socket stops here, before it touches
        # the storage or the lockspace (it would take a slot as a ghost
        # member).  The broker starts before the socket serves, so that no
        # caller sees its lease holders before they are loaded.
        core.check_socket_free(conf.broker.socket_path)
        self.broker = core.Broker(conf)
        self.broker.start()
        authorizer = Authorizer(lambda: (conf.broker.allowed_uids,
                                         conf.broker.allowed_gids))
        dispatcher = api.dispatcher_for(self.broker)
        if conf.metrics.enabled:
            dispatcher.timings = Timings()
        self.server = RPCServer(
            conf.broker.socket_path, dispatcher,
            authorizer, max_connections=conf.broker.max_connections,
            max_frame=conf.broker.max_frame_bytes or
            protocol.DEFAULT_MAX_FRAME,
            group=conf.broker.socket_group,
            limits=lambda: ConnectionLimits.from_options(conf.broker))
        self.server.start()
        self.metrics = metrics.serve(conf, conf.metrics.broker_port,
                                     broker=self.broker,
                                     rpc=dispatcher.timings)
        LOG.info('%s serving %s as %s (host_id %s).', self.name,
                 conf.broker.socket_path, self.broker.member_id,
                 conf.heartbeat.host_id)

    def alive(self) -> str | None:
        """None while the broker answers a ping on its own socket.

        A storage stall is no reason (the broker is built to serve through
        one); an RPC server that no longer answers is.
        """
        if self.server is None:
            return 'the RPC server is not running'
        client = BrokerClient(self.conf.broker.socket_path,
                              timeout=ALIVE_TIMEOUT)
        try:
            client.ping()
        except exception.HeartbeatError as err:
            return 'no answer to ping on %s: %s' % (
                self.conf.broker.socket_path, err)
        finally:
            client.close()
        return None

    def _stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def _reloaded(self, result: ReloadResult | None,
                  error: str | None) -> None:
        super()._reloaded(result, error)
        if self.broker is None:
            return
        if result is None:
            self.broker.options_reloaded(None, error)
        else:
            self.broker.options_reloaded(result)

    def _reset(self) -> None:
        if self.broker is not None:
            self.broker.reschedule()
