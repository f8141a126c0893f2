"""Lazy loading of sanlock's Python binding.

There is no sanlock binding on PyPI: it comes from Debian's python3-sanlock
package as a CPython extension under /usr/lib/python3/dist-packages, which
loads fine into any CPython 3.11 interpreter (a pyenv build or a virtualenv)
even when that directory is not on its path.  The binding is imported only
when sanlock fencing is used.

The binding finds its daemon through the ``SANLOCK_RUN_DIR`` environment
variable, read once per process: one process talks to one sanlock daemon.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys
import threading
from types import ModuleType

from heartbeat.fencing.errors import BindingMissing
from heartbeat.fencing.errors import FencingError

DIST_PACKAGES = '/usr/lib/python3/dist-packages'
RUN_DIR_ENV = 'SANLOCK_RUN_DIR'

_lock = threading.Lock()


def _candidates() -> list[str]:
    tag = 'sanlock.cpython-%d%d-*.so' % sys.version_info[:2]
    return sorted(glob.glob(os.path.join(DIST_PACKAGES, tag)))


def _load_file(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location('sanlock', path)
    if spec is None or spec.loader is None:
        raise BindingMissing('Cannot load the sanlock binding from %s.'
                             % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules['sanlock'] = module
    return module


def load(run_dir: str | None = None) -> ModuleType:
    """The ``sanlock`` module, talking to the daemon of ``run_dir``.

    Raises :class:`BindingMissing` naming the python3-sanlock package when
    the binding cannot be found, and :class:`FencingError` when this
    process already talks to another daemon.
    """
    with _lock:
        if run_dir:
            current = os.environ.get(RUN_DIR_ENV)
            if 'sanlock' in sys.modules and current not in (None, run_dir):
                raise FencingError(
                    'This process already talks to the sanlock daemon of %s; '
                    'one process can talk to one daemon only (run each in '
                    'its own process).' % current)
            os.environ[RUN_DIR_ENV] = run_dir
        try:
            return importlib.import_module('sanlock')
        except ImportError as err:
            for path in _candidates():
                try:
                    return _load_file(path)
                except ImportError:
                    continue
            raise BindingMissing(
                'sanlock fencing needs the sanlock Python binding, which '
                'comes from the Debian package python3-sanlock (there is '
                'none on PyPI): install it ("apt-get install sanlock '
                'python3-sanlock"), or set [fencing] fencer = none for a '
                'demo without protection.') from err
