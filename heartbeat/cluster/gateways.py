"""One TCP "gateway" per simulated host: its network submonitor's target.

A real host checks that it reaches its gateway; a simulated one connects to
127.0.0.1:PORT of its own :class:`Gateways` listener (``[submonitors]
network_method = tcp``).  :meth:`Gateways.cut` closes a host's listener, so
that its network reading drops to 0 and its score loses ``[agent]
penalty_network``; :meth:`Gateways.restore` listens on the same port again.
A thread accepts and closes every probe, so the listeners never fill up.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Any


class Gateways:
    """Listeners on 127.0.0.1, one per host id, until :meth:`close`."""

    def __init__(self, host_ids: range | list[int]) -> None:
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._socks: dict[int, socket.socket] = {}
        self.ports: dict[int, int] = {}
        for host_id in host_ids:
            self._listen(host_id, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop,
                                        name='gateways', daemon=True)
        self._thread.start()

    def _listen(self, host_id: int, port: int) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', port))
        sock.listen(64)
        sock.setblocking(False)
        with self._lock:
            self._socks[host_id] = sock
            self.ports[host_id] = sock.getsockname()[1]
            self._selector.register(sock, selectors.EVENT_READ)

    def overrides(self, host_id: int) -> dict[str, dict[str, Any]]:
        """The ``[submonitors]`` options that probe this host's gateway."""
        return {'submonitors': {
            'enabled': 'network,cpu_load,free_memory,storage_domain',
            'network_method': 'tcp', 'network_probes': 1,
            'network_targets': '127.0.0.1:%d' % self.ports[host_id]}}

    def is_cut(self, host_id: int) -> bool:
        with self._lock:
            return host_id not in self._socks

    def cut(self, host_id: int) -> None:
        """Close the host's gateway: its network probes fail."""
        with self._lock:
            sock = self._socks.pop(host_id, None)
            if sock is not None:
                self._selector.unregister(sock)
        if sock is not None:
            sock.close()

    def restore(self, host_id: int) -> None:
        """Listen on the host's gateway port again."""
        if self.is_cut(host_id):
            self._listen(host_id, self.ports[host_id])

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                empty = not self._socks
            if empty:
                self._stop.wait(0.1)
                continue
            try:
                ready = self._selector.select(0.1)
            except (OSError, ValueError):
                continue  # a listener closed meanwhile
            for key, _ in ready:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue  # closed by cut(), or the prober went away
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        for host_id in list(self._socks):
            self.cut(host_id)
        self._selector.close()
