"""The HTTP endpoint that serves one registry on ``/metrics``.

A small threading WSGI server around ``prometheus_client.make_wsgi_app``,
started in a daemon thread of its own and stopped with the daemon.  Port
0 binds any free port; :attr:`MetricsEndpoint.port` says which.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any
from wsgiref import simple_server

from oslo_log import log as logging
from prometheus_client import CollectorRegistry
from prometheus_client import make_wsgi_app

from heartbeat import exception

LOG = logging.getLogger(__name__)


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # One line per scrape on stderr is noise in a daemon's journal.
        pass


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsEndpoint:
    """Serves ``registry`` over HTTP on ``host``:``port`` once started."""

    def __init__(self, registry: CollectorRegistry, host: str,
                 port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = '[%s]' % self.host if ':' in self.host else self.host
        return 'http://%s:%d/metrics' % (host, self.port)

    def start(self) -> None:
        """Bind and serve; ConfigError when the address cannot be bound."""
        cls = _Server6 if ':' in self.host else _Server
        try:
            server = simple_server.make_server(
                self.host, self.port, make_wsgi_app(self.registry),
                server_class=cls, handler_class=_Quiet)
        except OSError as err:
            raise exception.ConfigError(
                'Cannot serve metrics on %s:%d ([metrics] host and port): '
                '%s.' % (self.host, self.port, err)) from err
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={'poll_interval': 0.5},
            name='heartbeat-metrics', daemon=True)
        self._thread.start()
        LOG.info('Serving metrics on %s.', self.url)

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
