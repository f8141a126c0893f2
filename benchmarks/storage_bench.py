"""Shared-storage driver: snapshot of 2,000 slots and one own-slot publish.

Prints JSON.  Every figure comes with a baseline measured in the same run on
the same file, sample for sample (one baseline sample right before each
driver sample), so the ratios stay meaningful on a shared, noisy machine:

* ``snapshot``: the driver's snapshot of an area whose 2,000 host slots all
  hold a record, after none, a quarter (an observer's steady state: it polls
  faster than members beat) or all of them changed since the previous
  snapshot.  A change is a beat (seq and timestamp) unless the row says the
  payloads changed too (every member changed its state and score);
  ``first_read`` is the first snapshot of a newly started driver, which
  decodes every slot.  Baseline: one raw O_DIRECT read of the whole area
  (what a snapshot cannot beat) into the driver's own read buffer; for
  ``first_read``, whose driver reads into a buffer it has just allocated,
  into a buffer allocated just before, as the driver allocates its own.
* ``publish``: one own-slot publish.  Baselines: one raw O_DIRECT|O_DSYNC
  write of one slot, and a raw O_DIRECT read of the slot followed by that
  write (the floor of a publish that checks, before it writes, that its
  slot still holds its last record), from the driver's own slot buffer.

The baselines use the driver's buffers because on a virtual machine the
speed of an O_DIRECT transfer depends on the guest memory behind the
buffer: on the 2-core VM these figures come from, the same 8 MiB read took
from 3.7 to 12.5 ms a read into buffers allocated one after the other in
one process, each keeping its speed.  A baseline with a buffer of its own
measures that, not the driver.

Targets: issue 2, snapshot < 50 ms and publish < 5 ms on local disk;
issue 13, a snapshot after a quarter of the slots changed and a publish
within 1.5x of their raw baselines.
"""

import argparse
import json
import mmap
import os
import random
import statistics
import tempfile
import time

from heartbeat.drivers import storage
from heartbeat.drivers.storage import layout
from heartbeat.drivers.storage import volume
from heartbeat.model import Report
from heartbeat.testing.members import StorageCluster

STATES = ('running', 'idle')


def summary(samples):
    samples = sorted(samples)
    return {'median_ms': round(statistics.median(samples) * 1e3, 3),
            'p99_ms': round(samples[int(len(samples) * 0.99) - 1] * 1e3, 3),
            'min_ms': round(samples[0] * 1e3, 3)}


def paired(fn, baselines, runs, before=None):
    """Time ``fn`` and each baseline, one sample of each per run.

    ``before`` (untimed) runs first in each run, e.g. to change slots.
    Returns the summary of ``fn`` with its ratio to each baseline (the
    ratio of the medians).
    """
    own = []
    base = {name: [] for name in baselines}
    for _ in range(runs):
        if before is not None:
            before()
        for name, baseline in baselines.items():
            start = time.perf_counter()
            baseline()
            base[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        fn()
        own.append(time.perf_counter() - start)
    row = summary(own)
    for name, samples in base.items():
        row['baseline_' + name] = summary(samples)
        row['vs_' + name] = round(
            statistics.median(own) / statistics.median(samples), 2)
    return row


class Members:
    """The records of every host slot, rewritten in one O_DIRECT write."""

    def __init__(self, fd, geometry, hosts):
        self.fd = fd
        self.geometry = geometry
        self.hosts = hosts
        self.image = mmap.mmap(-1, geometry.area_size)
        os.preadv(fd, [self.image], 0)  # keeps slot 0 as it is
        self.seq = [0] * (hosts + 1)
        self.state = [0] * (hosts + 1)
        self.rng = random.Random(13)

    def change(self, count, payloads=False):
        """Make ``count`` random members beat (and change their state)."""
        size = self.geometry.slot_size
        for host_id in self.rng.sample(range(1, self.hosts + 1), count):
            self.seq[host_id] += 1
            if payloads:
                self.state[host_id] ^= 1
            state = self.state[host_id]
            start = self.geometry.offset(host_id)
            self.image[start:start + size] = layout.encode(layout.Slot(
                host_id=host_id, seq=self.seq[host_id], incarnation=1,
                timestamp=time.time(),
                payload=layout.host_payload(
                    'member-%d' % host_id, 'compute', STATES[state],
                    3400 - 100 * state, {'vm': 'up', 'load': 0.25})), size)
        os.pwrite(self.fd, self.image, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--hosts', type=int, default=2000)
    parser.add_argument('--runs', type=int, default=50)
    parser.add_argument('--dir', default=None,
                        help='Directory on the disk to measure (default: '
                             'a temporary directory).')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(dir=args.dir, prefix='hb-bench-')
    cluster = StorageCluster(workdir, report_interval=10.0,
                             service_down_time=60.0, max_hosts=args.hosts)
    conf = cluster.make_conf(host_id=1)
    # Slot 1 holds a record written below by nobody alive: take it over
    # after a short watch instead of twice report_interval.
    conf.set_override('claim_timeout', 0.1, 'heartbeat_storage')
    geometry = storage.geometry_from(conf)

    drv = storage.StorageDriver(conf)
    drv.start()
    direct = drv.area.volume.direct
    # Baselines on the same file, same flags, no heartbeat code.
    flags = os.O_RDWR | os.O_DSYNC | (os.O_DIRECT if direct else 0)
    fd = os.open(cluster.metadata_path, flags)
    members = Members(fd, geometry, args.hosts)
    members.change(args.hosts)

    assert len(drv.snapshot().reports) == args.hosts
    # The driver's own buffers (see the module docstring).  The driver
    # compares what a read leaves in its buffer with copies of its own, so
    # a baseline read between two of its snapshots changes nothing it sees.
    big = drv._reader[1]
    one = drv.area.volume._buffer(geometry.slot_size)

    def raw_area_read():
        os.preadv(fd, [big], 0)

    read_base = {'raw_area_read': raw_area_read}
    snapshot = {
        'none_changed': paired(drv.snapshot, read_base, args.runs),
        'quarter_changed': paired(
            drv.snapshot, read_base, args.runs,
            lambda: members.change(args.hosts // 4)),
        'all_changed': paired(drv.snapshot, read_base, args.runs,
                              lambda: members.change(args.hosts)),
        'all_changed_payloads': paired(
            drv.snapshot, read_base, args.runs,
            lambda: members.change(args.hosts, payloads=True)),
    }
    observers = []
    fresh = []

    def new_observer():
        for old in observers:
            old.stop()
        observers[:] = [storage.StorageDriver(cluster.make_conf())]
        observers[0].start()
        fresh[:] = [volume.aligned(geometry.area_size)]

    def raw_fresh_read():
        os.preadv(fd, [fresh[0]], 0)

    snapshot['first_read'] = paired(lambda: observers[0].snapshot(),
                                    {'raw_area_read': raw_fresh_read},
                                    args.runs, new_observer)
    for old in observers:
        old.stop()

    # The publish baselines write the last member's slot, with the record
    # it holds (the members write no more once they are measured).
    spare = geometry.offset(args.hosts)
    held = bytes(members.image[spare:spare + geometry.slot_size])

    def raw_slot_write():
        one[:] = held
        os.pwrite(fd, one, spare)

    def raw_slot_read_write():
        os.preadv(fd, [one], spare)
        one[:] = held
        os.pwrite(fd, one, spare)

    drv.join('compute', 'member-1')
    seq = iter(range(10**6, 10**9))

    def publish():
        drv.publish(Report(member_id='member-1', group='compute',
                           seq=next(seq), incarnation=2, state='running',
                           score=3400, payload={'vm': 'up', 'load': 0.25}))

    publish_row = paired(publish, {'raw_slot_write': raw_slot_write,
                                   'raw_slot_read_write':
                                       raw_slot_read_write},
                         args.runs * 4)
    # The baselines left every member's record where it was.
    assert len(drv.snapshot().reports) == args.hosts
    drv.stop()
    os.close(fd)

    quarter = snapshot['quarter_changed']
    print(json.dumps({
        'benchmark': 'storage',
        'hosts': args.hosts,
        'slot_size': geometry.slot_size,
        'area_bytes': geometry.area_size,
        'o_direct': direct,
        'snapshot': snapshot,
        'publish': publish_row,
        'targets': {'snapshot_median_ms_lt': 50, 'publish_median_ms_lt': 5,
                    'quarter_changed_vs_raw_area_read_le': 1.5,
                    'publish_vs_raw_slot_write_le': 1.5},
        'targets_met': {
            'snapshot_median_ms_lt': all(
                row['median_ms'] < 50 for row in snapshot.values()),
            'publish_median_ms_lt': publish_row['median_ms'] < 5,
            'quarter_changed_vs_raw_area_read_le':
                quarter['vs_raw_area_read'] <= 1.5,
            'publish_vs_raw_slot_write_le':
                publish_row['vs_raw_slot_write'] <= 1.5,
        },
    }, indent=2))


if __name__ == '__main__':
    main()
