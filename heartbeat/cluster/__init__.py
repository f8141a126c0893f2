"""Simulated HA hosts on one machine: real daemons, one shared storage.

What ``heartbeat-local-cluster`` runs and what the functional tests and
benchmarks start: per host a heartbeat-broker and a heartbeat-agent (and,
with sanlock fencing, a sanlock daemon of its own), each with its own
config, socket and log under one work directory, all sharing one metadata
file and one lease file, with a demo workload that proves where it ran.

* :mod:`heartbeat.cluster.daemons`: one broker or agent process;
* :mod:`heartbeat.cluster.sanlockd`: one unprivileged sanlock daemon;
* :mod:`heartbeat.cluster.hosts`: the hosts and the cluster;
* :mod:`heartbeat.cluster.demo`: the demo workload and its log's check;
* :mod:`heartbeat.cluster.scenarios`: faults and what they cost.
"""
