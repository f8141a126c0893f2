"""The fault suite (``tox -e reliability``): one row per fault.

One module per fault family, each case against real servers and daemons
started by the fixtures: backend SIGSTOP (test_backend_pause) and kill -9
with a restart (test_backend_restart) on redis, ZooKeeper, etcd and
memcached; kill -9 of a member, a broker and an agent (test_process_kill);
damaged slots (test_storage_slots); a 30 s FUSE storage stall
(test_storage_stall); fuzzed RPC frames, slowloris connections and a
second broker (test_broker_faults); lease losses and partitions with the
sanlock fencer (test_fencing); bad configuration (test_bad_config).

The run prints one table and writes JSON (see conftest.py); a case whose
target is missed fails.  ``tox -e reliability -- --long`` runs soaks.
"""
