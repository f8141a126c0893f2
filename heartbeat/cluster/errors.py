"""The error of the simulated cluster."""

from __future__ import annotations

from heartbeat import exception


class ClusterError(exception.HeartbeatError):
    """A simulated host or its daemons could not start or be reached.

    The message is one line, fit for the command's error output; details
    (a daemon's log) are in the work directory.
    """
