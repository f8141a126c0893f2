"""The broker: the one process of a host that does storage, monitoring and
locking I/O, and answers local callers from memory over a unix socket.

:class:`heartbeat.broker.client.BrokerClient` is how the agent, the CLIs and
other daemons talk to it.
"""
