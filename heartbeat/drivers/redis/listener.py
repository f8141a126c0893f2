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

    A message is told at once; then, unless the callback returned False
    (it has no use for that group), the listener sleeps ``batch`` seconds
    and tells the groups of the messages that came meanwhile, each once.
    Each wakeup costs redis-py about a quarter of a millisecond of CPU on
    a small machine, so at a hundred changes a second telling every
    message as it comes costs more than the reads it triggers.

    redis-py reconnects a broken pub/sub connection and subscribes again
    by itself when the next read finds it broken; the messages published
    meanwhile are gone, so a reconnection is treated as a break too.
    """

    #: Messages taken in one drain at the most: a flood of changes still
    #: gets its groups told.
    DRAIN_MAX = 10000

    def __init__(self, client: redis.Redis, prefix: str,
                 callback: Callable[[str], bool | None],
                 backoff: client_mod.Backoff,
                 poll: float = 0.2, batch: float = 0.0) -> None:
        self.client = client
        self.prefix = prefix
        self.callback = callback
        self.backoff = backoff
        self.poll = poll
        self.batch = batch
        self._stop = threading.Event()
        #: Set by redis-py when it connected the subscription again.
        self._reconnected = threading.Event()
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

    def _notify(self, group: str) -> bool:
        """Tell ``group``; whether the callback has a use for a hold."""
        try:
            return self.callback(group) is not False
        except Exception:
            LOG.exception('Change callback for group %s failed; listening '
                          'goes on.', group)
            return True

    def _on_connect(self, connection: Any) -> None:
        # Called by redis-py, in this thread, on every (re)connection.
        self._reconnected.set()

    def _tell_every_group(self) -> None:
        """After messages may have been lost: every known group changed."""
        for raw in self.client.smembers(codec.groups_key(self.prefix)):
            self._notify(codec.text(raw))

    @staticmethod
    def _group(msg: Any) -> str | None:
        if msg is None or msg.get('type') != 'message':
            return None
        return codec.text(msg['data'])

    def _drain(self, pubsub: Any) -> tuple[set[str], bool]:
        """The groups of the messages waiting now, without waiting.

        Also whether more may wait (DRAIN_MAX messages were taken).
        """
        groups: set[str] = set()
        for _ in range(self.DRAIN_MAX):
            msg = pubsub.get_message(timeout=0)
            if msg is None:
                return groups, False
            group = self._group(msg)
            if group is not None:
                groups.add(group)
        return groups, True

    def _check_reconnected(self) -> None:
        if self._reconnected.is_set():
            self._reconnected.clear()
            LOG.warning('Change channel of redis was connected again; '
                        'messages may have been lost meanwhile, so every '
                        'group is read.')
            self._tell_every_group()

    def _listen(self, pubsub: Any) -> None:
        """Tell the messages of one subscription until stopped or broken."""
        while not self._stop.is_set():
            group = self._group(pubsub.get_message(timeout=self.poll))
            self._check_reconnected()
            if group is None or not self._notify(group):
                continue
            if self.batch <= 0 or self._stop.wait(self.batch):
                continue
            more = True
            while more and not self._stop.is_set():
                groups, more = self._drain(pubsub)
                self._check_reconnected()
                for group in sorted(groups):
                    self._notify(group)

    def _run(self) -> None:
        broken = False
        while not self._stop.is_set():
            pubsub = self._pubsub()
            connection = None
            try:
                pubsub.subscribe(codec.channel(self.prefix))
                connection = getattr(pubsub, 'connection', None)
                if connection is not None:
                    connection.register_connect_callback(self._on_connect)
                self._reconnected.clear()
                self.subscribed.set()
                if broken:
                    self._tell_every_group()
                    LOG.info('Change channel of redis subscribed again.')
                self.backoff.reset()
                broken = False
                self._listen(pubsub)
            except client_mod.ERRORS as err:
                self.subscribed.clear()
                if not broken:
                    LOG.warning('Change channel of redis lost (%s); '
                                'resubscribing.', err)
                broken = True
                self._stop.wait(self.backoff.next())
            finally:
                if connection is not None:
                    connection.deregister_connect_callback(self._on_connect)
                try:
                    pubsub.close()
                except client_mod.ERRORS:
                    pass
