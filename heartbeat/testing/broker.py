"""Real heartbeat-broker processes for tests.

::

    workdir = short_dir()
    broker = BrokerProcess(workdir, 1, os.path.join(workdir, 'metadata'))
    init_area(broker.config_path)       # format the shared metadata file
    broker.start()                      # waits until the broker answers
    try:
        with broker.client() as client:
            client.put_state('idle', 3400)
        wait_for(lambda: broker.status().writer.written_version == 1)
    finally:
        broker.stop()

The processes are those of :mod:`heartbeat.cluster.daemons` (the product's
simulated hosts); this module adds what only tests need: short temporary
directories and a waiting helper.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
import shutil
import tempfile
from typing import TypeVar

from heartbeat.cluster.daemons import BASE_CONF
from heartbeat.cluster.daemons import BrokerProcess
from heartbeat.cluster.daemons import DaemonProcess
from heartbeat.cluster.daemons import init_area
from heartbeat.cluster.daemons import merged
from heartbeat.cluster.daemons import Sections
from heartbeat.cluster.daemons import write_conf
from heartbeat.testing import waiting

__all__ = ['BASE_CONF', 'BrokerProcess', 'DaemonProcess', 'Sections',
           'init_area', 'merged', 'short_dir', 'wait_for', 'write_conf']

T = TypeVar('T')


#: Directories made by short_dir(), removed when the process exits.
_MADE: list[str] = []


def short_dir(prefix: str = 'hb') -> str:
    """A new short temporary directory (for unix socket paths).

    Removed when the process exits, unless something is still mounted in
    it (a FUSE mount left behind must not be walked into).
    """
    path = tempfile.mkdtemp(prefix=prefix)
    if not _MADE:
        atexit.register(_remove_made)
    _MADE.append(path)
    return path


def _remove_made() -> None:
    try:
        with open('/proc/self/mountinfo', encoding='utf-8') as f:
            mounts = [fields[4] for fields in map(str.split, f)
                      if len(fields) > 4]
    except OSError:
        return
    for path in _MADE:
        if not any(m == path or m.startswith(path + '/') for m in mounts):
            shutil.rmtree(path, ignore_errors=True)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0,
             step: float = waiting.INTERVAL) -> T:
    """:func:`heartbeat.testing.waiting.wait_for`, ``step`` its interval.

    Kept for the callers that import it from here.
    """
    return waiting.wait_for(predicate, timeout, interval=step)
