"""The generic part of a heartbeat daemon's service.

:class:`ReloadableService` is an oslo.service ``ServiceBase`` that starts
once, reloads its configuration in place and stops once, with start, stop
and every reload serialised by one lifecycle lock (a SIGHUP that arrives
during start waits for it; a stop that arrives during a reload waits for
it).  A reload checks the config files as a whole before it applies
anything (:class:`~heartbeat.service.reload.ConfigReloader`), so a bad
file leaves the running options as they were.

A subclass says what the daemon does: :meth:`~ReloadableService._start`
builds and starts it (in the process that serves, never before the
launcher forks), :meth:`~ReloadableService._stop` undoes that, and
:meth:`~ReloadableService._reloaded` hears about every reload.  Log lines
go to the logger named after the subclass's module, so each daemon's lines
keep its own name.

:class:`Daemon` is what :func:`heartbeat.service.launcher.launch` needs of
a service.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from typing import Protocol

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service.backend.base import ServiceBase

from heartbeat import exception
from heartbeat.service.reload import Area
from heartbeat.service.reload import ConfigReloader
from heartbeat.service.reload import drop_cached_values
from heartbeat.service.reload import ReloadResult


class Daemon(Protocol):
    """A service that the launcher can run in its supervised worker."""

    @property
    def conf(self) -> cfg.ConfigOpts:
        """The daemon's parsed options."""

    @property
    def name(self) -> str:
        """The program name, e.g. ``heartbeat-broker`` (process title)."""

    def start(self) -> None:
        """Start serving; raise ConfigError if the options cannot work."""

    def stop(self) -> None:
        """Stop serving and release what start took; makes wait() return."""

    def wait(self) -> None:
        """Block until stop() has finished."""

    def request_reload(self) -> None:
        """Reload the configuration soon; return at once."""

    def alive(self) -> str | None:
        """None while the daemon's loops make progress, else why not.

        Called by the systemd watchdog feeder (see
        :mod:`heartbeat.service.notify`) from a thread of its own.
        """


class ReloadableService(ServiceBase):  # type: ignore[misc]
    """Start, in-place reload and stop of one daemon; see the module doc.

    ``register_opts`` registers every option the daemon reads on a given
    ``ConfigOpts`` (a reload registers them on a fresh one to check the
    files before applying them); ``areas`` lists the options compared for
    "restart needed"; ``validate`` checks option combinations and raises
    ConfigError; ``name`` is the program name used in log lines and the
    worker's process title.
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 register_opts: Callable[[cfg.ConfigOpts], None],
                 areas: Callable[[], list[Area]], name: str,
                 validate: Callable[[cfg.ConfigOpts], None] | None = None
                 ) -> None:
        super().__init__()
        self.conf = conf
        self.name = name
        self.log = logging.getLogger(type(self).__module__)
        self.reloader = ConfigReloader(conf, register_opts, areas,
                                       validate=validate)
        self._done = threading.Event()
        # Set as soon as stop() is called, before it has the lock: a reload
        # waiting for the lock must not run against a daemon being stopped.
        self._stopping = False
        self._lifecycle = threading.Lock()
        self._reload_guard = threading.Lock()
        self._reload_wanted = False
        self._reloading: threading.Thread | None = None

    # -- what a subclass provides -------------------------------------------

    def _start(self) -> None:
        """Build and start the daemon (under the lifecycle lock)."""
        raise NotImplementedError

    def _stop(self) -> None:
        """Stop what :meth:`_start` started (under the lifecycle lock).

        It may run without a start, or after a start that failed half
        way: release only what exists.
        """
        raise NotImplementedError

    def _reloaded(self, result: ReloadResult | None,
                  error: str | None) -> None:
        """One reload ended (under the lifecycle lock); this one logs.

        ``result`` is what changed, or None when the files were refused
        for ``error`` (and the running options are unchanged).
        """
        if result is None:
            self.log.error('%s', error)
            return
        self.log.info('%s configuration reloaded in place: %d option(s) '
                      'applied (%s); %d need a restart.', self.name,
                      len(result.applied), ', '.join(result.applied) or '-',
                      len(result.restart_needed))
        self.log.debug('Reload applied %s.', list(result.applied))
        if result.restart_needed:
            self.log.warning('%s keeps the old value of %s until it '
                             'restarts.', self.name,
                             ', '.join(result.restart_needed))

    def _reset(self) -> None:
        """The options were mutated in place by someone else: use them."""

    def alive(self) -> str | None:
        """None while the daemon serves; a subclass checks its loops."""
        return None

    # -- the ServiceBase contract -------------------------------------------

    def start(self) -> None:
        """Start the daemon; ConfigError if its options cannot work."""
        with self._lifecycle:
            self._done.clear()
            self._stopping = False
            self._start()

    def stop(self) -> None:
        """Stop the daemon (after a running reload ends); wait() returns.

        Reloads requested but not yet begun are dropped.
        """
        self._stopping = True
        with self._lifecycle:
            try:
                self._stop()
            finally:
                self._done.set()

    def wait(self) -> None:
        """Block until :meth:`stop` has run."""
        self._done.wait()

    def reset(self) -> None:
        """oslo.service's launcher mutated the options: apply them now."""
        drop_cached_values(self.conf)
        self._reset()
        self.log.info('%s configuration reloaded.', self.name)

    # -- reloading ------------------------------------------------------------

    def request_reload(self) -> None:
        """Reload soon, in a thread of its own; never blocks, never drops.

        A request that arrives while a reload runs makes one more reload
        follow it (a SIGHUP sent right after editing a file again must see
        the newest file); any number of such requests make only one.
        """
        with self._reload_guard:
            self._reload_wanted = True
            if self._reloading is None:
                self._reloading = threading.Thread(
                    target=self._reload_loop, name='%s-reload' % self.name,
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
                self.log.exception('Reloading the configuration failed; '
                                   '%s goes on with its options.', self.name)

    def reload(self) -> None:
        """Re-read the config files and apply the mutable options in place.

        A file that cannot be read or holds an invalid value is refused as
        a whole: the daemon goes on with the options it had, and
        :meth:`_reloaded` hears why.  A reload before :meth:`start` applies
        the files (start then uses them); one after :meth:`stop` does
        nothing, and so does one that waited for the lock while stop() was
        called.
        """
        with self._lifecycle:
            if self._stopping:
                self.log.debug('%s is stopped: reload skipped.', self.name)
                return
            try:
                result = self.reloader.reload()
            except exception.HeartbeatError as err:
                self._reloaded(None, str(err))
                return
            self._reloaded(result, None)
