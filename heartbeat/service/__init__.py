"""Daemon plumbing shared by heartbeat-broker and heartbeat-agent."""
