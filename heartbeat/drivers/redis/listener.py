"""A thread that turns messages of the change channel into callbacks."""

from __future__ import annotations

from collections.abc import Callable
import threading
from typing import Any

from oslo_log import log as logging
import redis

from heartbeat.drivers.redis import client as client_mod
from heartbeat.drivers.redis import codec

LOG = logging.getLogger(__name__)


class ChangeListener:
    """Subscribes to the change channel and calls ``callback(group)``.

    After the subscription broke and came back, messages may have been
    lost, so the callback is called once for every known group.
    """

    def __init__(self, client: redis.Redis, prefix: str,
                 callback: Callable[[str], None], backoff: client_mod.Backoff,
                 poll: float = 0.2) -> None:
        self.client = client
        self.prefix = prefix
        self.callback = callback
        self.backoff = backoff
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='heartbeat-redis-listener')
        self.subscribed = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Stop listening and wait for the thread; safe to call twice."""
        self._stop.set()
        if self._thread.is_alive() and (
                self._thread is not threading.current_thread()):
            self._thread.join()

    def _pubsub(self) -> Any:
        # redis-py's pubsub() is untyped.
        client: Any = self.client
        return client.pubsub(ignore_subscribe_messages=True)

    def _notify(self, group: str) -> None:
        try:
            self.callback(group)
        except Exception:
            LOG.exception('Change callback for group %s failed; listening '
                          'goes on.', group)

    def _run(self) -> None:
        broken = False
        while not self._stop.is_set():
            pubsub = self._pubsub()
            try:
                pubsub.subscribe(codec.channel(self.prefix))
                self.subscribed.set()
                if broken:
                    for raw in self.client.smembers(
                            codec.groups_key(self.prefix)):
                        self._notify(codec.text(raw))
                    LOG.info('Change channel of redis subscribed again.')
                self.backoff.reset()
                broken = False
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=self.poll)
                    if msg is not None and msg.get('type') == 'message':
                        self._notify(codec.text(msg['data']))
            except client_mod.ERRORS as err:
                self.subscribed.clear()
                if not broken:
                    LOG.warning('Change channel of redis lost (%s); '
                                'resubscribing.', err)
                broken = True
                self._stop.wait(self.backoff.next())
            finally:
                try:
                    pubsub.close()
                except client_mod.ERRORS:
                    pass
