"""Submonitors: small probes the broker runs, each on its own interval.

A submonitor is a plugin of the ``heartbeat.submonitors`` entry point (see
:class:`~heartbeat.broker.submonitors.base.Submonitor`).  The
:class:`~heartbeat.broker.submonitors.runner.SubmonitorRunner` gives every
enabled submonitor its own thread, so a slow probe delays only its own
readings and never an RPC answer.
"""
