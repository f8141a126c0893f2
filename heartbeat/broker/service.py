"""heartbeat-broker as an oslo.service service.

:class:`BrokerService` builds everything in :meth:`BrokerService.start`, in
the process that serves, never before the launcher forks.  A SIGHUP calls
:meth:`BrokerService.reload`: the config files are checked and the mutable
options applied in place, while the broker keeps its process, its storage
connection, its sanlock lockspace and lease, and its slot (stopping would
mark the host as left and leave the lockspace: seconds without
protection).  Options that cannot change at run time are logged as needing
a restart.  See :mod:`heartbeat.service.launcher` for the process side.
"""

from __future__ import annotations

import threading

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service.backend.base import ServiceBase

from heartbeat.broker import api
from heartbeat.broker import core
from heartbeat.broker import protocol
from heartbeat.broker.server import Authorizer
from heartbeat.broker.server import RPCServer
from heartbeat import conf as hb_conf
from heartbeat.conf import opts as hb_opts
from heartbeat import exception
from heartbeat.service.reload import ConfigReloader

LOG = logging.getLogger(__name__)


def _areas() -> list[tuple[str, list[cfg.Opt]]]:
    return [(group.name, opts) for group, opts in hb_opts.list_opts()]


class BrokerService(ServiceBase):  # type: ignore[misc]
    """The broker and its RPC server as one oslo.service service."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf
        self.broker: core.Broker | None = None
        self.server: RPCServer | None = None
        self.reloader = ConfigReloader(conf, core.register_opts, _areas,
                                       validate=hb_conf.validate)
        self._done = threading.Event()
        # Serialises start/stop/reload: a SIGHUP during start waits for it.
        self._lifecycle = threading.Lock()
        self._reload_guard = threading.Lock()
        self._reload_wanted = False
        self._reloading: threading.Thread | None = None

    def start(self) -> None:
        with self._lifecycle:
            conf = self.conf
            self._done.clear()
            self.broker = core.Broker(conf)
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
        with self._lifecycle:
            if self.server is not None:
                self.server.stop()
                self.server = None
            if self.broker is not None:
                self.broker.stop()
                self.broker = None
            self._done.set()

    def wait(self) -> None:
        self._done.wait()

    def request_reload(self) -> None:
        """Reload soon, in a thread of its own; never blocks, never drops.

        A request that arrives while a reload runs makes one more reload
        follow it (a SIGHUP sent right after editing a file again must see
        the newest file).
        """
        with self._reload_guard:
            self._reload_wanted = True
            if self._reloading is None:
                self._reloading = threading.Thread(
                    target=self._reload_loop, name='broker-reload',
                    daemon=True)
                self._reloading.start()

    def _reload_loop(self) -> None:
        while True:
            with self._reload_guard:
                if not self._reload_wanted:
                    self._reloading = None
                    return
                self._reload_wanted = False
            try:
                self.reload()
            except Exception:
                # A bug must not end reloads for the life of the process.
                LOG.exception('Reloading the configuration failed; the '
                              'broker goes on with its options.')

    def reload(self) -> None:
        """Re-read the config files and apply the mutable options in place.

        A file that cannot be read or holds an invalid value is refused as
        a whole: the broker goes on with the options it had, and says so.
        """
        with self._lifecycle:
            try:
                result = self.reloader.reload()
            except exception.HeartbeatError as err:
                LOG.error('%s', err)
                if self.broker is not None:
                    self.broker.options_reloaded(None, str(err))
                return
            LOG.info('heartbeat-broker configuration reloaded in place: %d '
                     'option(s) applied (%s); %d need a restart.',
                     len(result.applied), ', '.join(result.applied) or '-',
                     len(result.restart_needed))
            LOG.debug('Reload applied %s; restart needed for %s.',
                      list(result.applied), list(result.restart_needed))
            if self.broker is not None:
                self.broker.options_reloaded(result)

    def reset(self) -> None:
        """The launcher mutated the options in place: apply them now."""
        if self.broker is not None:
            self.broker.reschedule()
        LOG.info('heartbeat-broker configuration reloaded.')
