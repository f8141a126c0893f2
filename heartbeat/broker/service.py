"""heartbeat-broker as an oslo.service service.

:class:`BrokerService` is launched by ``heartbeat-broker`` with
``restart_method='mutate'``: on SIGHUP the launcher re-reads the config
files, applies the mutable options, and restarts the service (stop, then
start) with them.  Everything is built in :meth:`BrokerService.start`, in
the process that serves, never before the launcher forks.
"""

from __future__ import annotations

import threading

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service.backend.base import ServiceBase

from heartbeat.broker import api
from heartbeat.broker.core import Broker
from heartbeat.broker import protocol
from heartbeat.broker.server import Authorizer
from heartbeat.broker.server import RPCServer

LOG = logging.getLogger(__name__)


class BrokerService(ServiceBase):  # type: ignore[misc]
    """The broker and its RPC server as one oslo.service service."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf
        self.broker: Broker | None = None
        self.server: RPCServer | None = None
        self._done = threading.Event()

    def start(self) -> None:
        conf = self.conf
        self._done.clear()
        self.broker = Broker(conf)
        self.broker.start()
        authorizer = Authorizer(lambda: (conf.broker.allowed_uids,
                                         conf.broker.allowed_gids))
        self.server = RPCServer(
            conf.broker.socket_path, api.dispatcher_for(self.broker),
            authorizer, max_connections=conf.broker.max_connections,
            max_frame=conf.broker.max_frame_bytes or
            protocol.DEFAULT_MAX_FRAME,
            group=conf.broker.socket_group)
        self.server.start()
        LOG.info('heartbeat-broker serving %s as %s (host_id %s).',
                 conf.broker.socket_path, self.broker.member_id,
                 conf.heartbeat.host_id)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        self._done.set()

    def wait(self) -> None:
        self._done.wait()

    def reset(self) -> None:
        """Options were mutated in place; they are read live."""
        LOG.info('heartbeat-broker configuration reloaded.')
