"""What every test fixture of heartbeat.testing shares.

The bases are :mod:`heartbeat.cluster.lifecycle`'s, shared with the
simulated hosts.
"""

from __future__ import annotations

from heartbeat.cluster.lifecycle import Fixture
from heartbeat.cluster.lifecycle import Pausable

__all__ = ['Fixture', 'Pausable']
