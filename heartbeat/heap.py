"""Handing the heap a big read freed back to the operating system.

A first read of a group of 100,000 members decodes tens of megabytes that
are garbage a moment later.  glibc keeps most of what is freed for the
process (its top-of-heap trim needs a free area larger than the biggest
block it ever mapped), so an observer would hold that memory for the rest
of its life.  :func:`trim` asks the C library to return what is free;
where the C library has no ``malloc_trim`` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
from typing import Any

#: Reports a read must bring for the monitor to trim the heap after it:
#: below this the memory freed is too little to matter.
AFTER_REPORTS = 10000

_trim: Any = None
_resolved = False


def trim() -> bool:
    """Return the free heap to the system; whether the C library can."""
    global _trim, _resolved
    if not _resolved:
        _resolved = True
        try:
            # The symbols of the process itself, of which the C library.
            _trim = getattr(ctypes.CDLL(None), 'malloc_trim', None)
        except OSError:
            _trim = None
        if _trim is not None:
            _trim.argtypes = [ctypes.c_size_t]
            _trim.restype = ctypes.c_int
    if _trim is None:
        return False
    _trim(0)
    return True
