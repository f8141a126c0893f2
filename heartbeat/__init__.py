"""heartbeat: liveness and service groups for OpenStack-style daemons."""
