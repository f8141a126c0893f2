"""Test set-up shared by unit and functional tests.

With HEARTBEAT_EVENTLET=1 (tox -e eventlet) the whole test process is
eventlet-monkey-patched before anything else is imported, the way an
eventlet-based OpenStack daemon runs, to prove the library works there too.
"""

import os

if os.environ.get('HEARTBEAT_EVENTLET') == '1':
    import eventlet

    eventlet.monkey_patch()
