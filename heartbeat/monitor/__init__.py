"""Poll to push: what observers know of members, and the events about them.

* :mod:`~heartbeat.monitor.fetcher`: one batched (or incremental) read of
  the watched groups per cycle, through the driver;
* :mod:`~heartbeat.monitor.repository`: what is known of each member;
* :mod:`~heartbeat.monitor.updater`: the diff of a read against the
  repository, as events (pure, clock passed in);
* :mod:`~heartbeat.monitor.deadlines`: when members go down, a lazy
  min-heap per group, so that a cycle costs O(changes + expiries);
* :mod:`~heartbeat.monitor.dispatcher` and
  :mod:`~heartbeat.monitor.eventqueue`: delivery to subscribers, each with
  a bounded, coalescing queue;
* :mod:`~heartbeat.monitor.pipeline`: the :class:`Monitor`, one fetch loop
  per driver tying them together, behind ``servicegroup.API.watch()``.
"""
