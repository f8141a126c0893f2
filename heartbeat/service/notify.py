"""systemd's notification protocol: READY, STOPPING, STATUS and the watchdog.

A unit of ``Type=notify`` waits for ``READY=1`` before it counts the daemon
as started; with ``WatchdogSec=`` systemd restarts a daemon that stops
sending ``WATCHDOG=1`` (it passes the period in ``$WATCHDOG_USEC``).  The
protocol is one datagram per message to the unix socket in
``$NOTIFY_SOCKET`` (a name starting with ``@`` is in the abstract
namespace), so no library is needed.  Outside systemd (no
``$NOTIFY_SOCKET``) every call here does nothing.

The daemons serve from a worker process under their own supervisor, so
their units say ``NotifyAccess=all``, and the watchdog is fed from the
worker, where the loops run: ``$WATCHDOG_PID`` (the main process) is not
required to match.

:class:`Watchdog` feeds the watchdog only while the daemon's own check
says its loops are alive: a loop that hangs stops the feeding, and
systemd restarts the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import socket
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: A check of the daemon's loops: None when alive, else why not.
Check = Callable[[], 'str | None']


#: Where :func:`claim` keeps the socket for this process and its workers.
CLAIMED = 'HEARTBEAT_NOTIFY_SOCKET'

#: What systemd's protocol puts in the environment.
VARIABLES = ('NOTIFY_SOCKET', CLAIMED, 'WATCHDOG_USEC', 'WATCHDOG_PID')


def claim() -> None:
    """Keep the notification socket from the process supervisor.

    cotyledon's master sends ``READY=1`` as soon as it starts, before any
    worker serves, and then removes ``NOTIFY_SOCKET``.  Called before the
    supervisor runs, this moves the socket to a variable of heartbeat's
    own, which the workers inherit: READY is then sent by the worker,
    once it serves.
    """
    path = os.environ.pop('NOTIFY_SOCKET', None)
    if path:
        os.environ[CLAIMED] = path


def child_environ() -> dict[str, str]:
    """This environment without systemd's notification variables.

    For processes a daemon starts (the workload): they must not speak to
    systemd in the daemon's name.
    """
    return {k: v for k, v in os.environ.items() if k not in VARIABLES}


def _address() -> str | None:
    path = os.environ.get('NOTIFY_SOCKET') or os.environ.get(CLAIMED)
    if not path:
        return None
    if path.startswith('@'):
        return '\0' + path[1:]
    return path


def notify(*states: str) -> bool:
    """Send ``states`` (``READY=1``, ``STATUS=...``) to systemd.

    False when not run by systemd or when the message could not be sent
    (logged at debug level: the daemon works without it).
    """
    address = _address()
    if address is None:
        return False
    message = '\n'.join(states).encode('utf-8', 'replace')
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as err:
        LOG.debug('Could not notify systemd (%s): %s', states, err)
        return False
    return True


def watchdog_period() -> float | None:
    """Seconds allowed between two ``WATCHDOG=1`` (None: no watchdog)."""
    raw = os.environ.get('WATCHDOG_USEC')
    if not raw or _address() is None:
        return None
    try:
        usec = int(raw)
    except ValueError:
        LOG.warning('Ignoring WATCHDOG_USEC=%r: not a number.', raw)
        return None
    return usec / 1e6 if usec > 0 else None


class Watchdog:
    """Sends ``WATCHDOG=1`` every half period while ``check`` says alive.

    ``check`` returns None while the daemon's loops make progress, or the
    reason they do not; then nothing is sent (said once in the log, and in
    the unit's status line) so that systemd restarts the daemon when the
    period runs out.  Does nothing without a watchdog period.
    """

    def __init__(self, check: Check, period: float | None = None,
                 name: str = 'heartbeat-watchdog') -> None:
        self.check = check
        self.period = period if period is not None else watchdog_period()
        self.name = name
        #: How often WATCHDOG=1 was sent, and how often it was held back.
        self.fed = 0
        self.withheld = 0
        self._alive = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.period is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name,
                                        daemon=True)
        self._thread.start()
        LOG.info('Feeding the systemd watchdog every %.1fs while the '
                 'daemon\'s loops are alive.', self.period / 2)

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def tick(self) -> bool:
        """Check once and feed the watchdog if alive; whether it was fed."""
        try:
            reason = self.check()
        except Exception as err:  # the check itself failing is a hang too
            reason = 'the liveness check failed: %s' % err
        if reason is None:
            if not self._alive:
                LOG.info('The daemon\'s loops are alive again; feeding the '
                         'systemd watchdog.')
                notify('STATUS=serving')
            self._alive = True
            if notify('WATCHDOG=1'):
                self.fed += 1
            return True
        if self._alive:
            LOG.error('Not feeding the systemd watchdog: %s. systemd '
                      'restarts the daemon if this lasts.', reason)
            notify('STATUS=not alive: %s' % reason)
        self._alive = False
        self.withheld += 1
        return False

    def _run(self) -> None:
        assert self.period is not None
        while not self._stop.wait(self.period / 2):
            self.tick()
