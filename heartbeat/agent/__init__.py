"""The HA agent: decides where the protected workload runs.

The decisions are pure (:mod:`heartbeat.agent.fsm`, :mod:`.score`,
:mod:`.election`): they take the broker's typed status and the time as
arguments and return what to do, so they are tested without processes,
mocks or sleeps.  The agent service performs what they return through the
broker client and the workload launcher; the agent never imports a driver,
storage code or sanlock.
"""
