"""The error of the workload launcher and its health checker."""

from __future__ import annotations

from heartbeat import exception


class WorkloadError(exception.HeartbeatError):
    """The workload could not be started, adopted, signalled or checked.

    The message is one line that says why (the command is not on PATH, the
    launcher cannot register with sanlock, ...), fit for a transition
    reason.
    """


class WorkloadBusy(WorkloadError):
    """The workload's lease is held by another process (flock fencer)."""
