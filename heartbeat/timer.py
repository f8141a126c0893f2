"""The periodic timer of oslo.service, chosen without locking a backend early.

Importing ``oslo_service.loopingcall`` picks a backend for the whole process,
so heartbeat never imports it at module import time.  When a member starts
its first timer and the process has not chosen a backend yet, heartbeat
picks eventlet if the process is eventlet-monkey-patched and threading
otherwise.  Daemons should call ``init_backend`` first thing in ``main()``.
"""

from __future__ import annotations

import sys
from typing import Any

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def _eventlet_patched() -> bool:
    eventlet = sys.modules.get('eventlet')
    if eventlet is None:
        return False
    try:
        from eventlet import patcher
    except ImportError:  # pragma: no cover - eventlet without patcher
        return False
    return bool(patcher.is_monkey_patched('thread'))


def fixed_interval_call(func: Any) -> Any:
    """A FixedIntervalLoopingCall of the process's oslo.service backend."""
    from oslo_service import backend

    if backend.get_backend_type() is None:
        chosen = (backend.BackendType.EVENTLET if _eventlet_patched()
                  else backend.BackendType.THREADING)
        LOG.info('No oslo.service backend selected; heartbeat selects %s.',
                 chosen.value)
        backend.init_backend(chosen)
    return backend.get_component('FixedIntervalLoopingCall')(func)
