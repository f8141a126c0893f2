"""Kept for tests that still import the broker helpers from here.

The helpers live in :mod:`heartbeat.testing.broker`, a public fixture;
import them from there.  (No tests in this module.)
"""

from heartbeat.testing.broker import BASE_CONF
from heartbeat.testing.broker import BrokerProcess
from heartbeat.testing.broker import init_area
from heartbeat.testing.broker import merged
from heartbeat.testing.broker import short_dir
from heartbeat.testing.broker import wait_for
from heartbeat.testing.broker import write_conf

__all__ = ['BASE_CONF', 'BrokerProcess', 'init_area', 'merged', 'short_dir',
           'wait_for', 'write_conf']
