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

    A message is told at once; then the listener sleeps ``batch`` seconds
    and tells the groups of the messages that came meanwhile, each once.
    Each wakeup costs redis-py about a quarter of a millisecond of CPU on
    a small machine, so at a hundred changes a second telling every
    message as it comes costs more than the reads it triggers.
    """

    #: Messages taken in one drain at the most: a flood of changes still
    #: gets its groups told.
    DRAIN_MAX = 10000

    def __init__(self, client: redis.Redis, prefix: str,
                 callback: Callable[[str], None], backoff: client_mod.Backoff,
                 poll: float = 0.2, batch: float = 0.0) -> None:
        self.client = client
        self.prefix = prefix
        self.callback = callback
        self.backoff = backoff
        self.poll = poll
        self.batch = batch
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

    @staticmethod
    def _group(msg: Any) -> str | None:
        if msg is None or msg.get('type') != 'message':
            return None
        return codec.text(msg['data'])

    def _drain(self, pubsub: Any) -> set[str]:
        """The groups of the messages waiting now, without waiting."""
        groups: set[str] = set()
        for _ in range(self.DRAIN_MAX):
            msg = pubsub.get_message(timeout=0)
            if msg is None:
                break
            group = self._group(msg)
            if group is not None:
                groups.add(group)
        return groups

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
                    group = self._group(pubsub.get_message(timeout=self.poll))
                    if group is None:
                        continue
                    self._notify(group)
                    if self.batch > 0 and not self._stop.wait(self.batch):
                        for group in sorted(self._drain(pubsub)):
                            self._notify(group)
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
