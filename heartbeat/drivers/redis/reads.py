"""What a read of the redis driver sends and what it makes of the reply.

Pure: the arguments of the snapshot script for a cursor, and the
:class:`~heartbeat.model.Snapshot` of its reply (see
:data:`heartbeat.drivers.redis.scripts.SNAPSHOT_SOURCE` for both
formats); the driver does the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
from typing import Any

from heartbeat.drivers.redis import codec
from heartbeat.model import Beats
from heartbeat.model import InvalidRecord
from heartbeat.model import Report
from heartbeat.model import Snapshot

US = 1000000
#: Members purged at most per group and read.
PURGE_LIMIT = 1000
#: Position of the reply format among the snapshot script's arguments
#: (its one key first).
FORMAT_ARG = 8


def snapshot_args(prefix: str, group: str | None,
                  cursor: codec.Cursor | None, epoch: str, member_ttl: float,
                  gone_retention: float, down_time: float) -> list[Any]:
    """The snapshot script's arguments, its routing key first.

    ``group`` None reads every group the cursor knows and discovers the
    others (a single server only); ``epoch`` names the dataset if the
    read finds a group without one.
    """
    full = cursor is None or (group is not None
                              and group not in cursor.clocks)
    names = ([group] if group is not None
             else list(cursor.clocks) if cursor is not None else [])
    groups: list[Any] = []
    for grp in names:
        if full or cursor is None:
            groups += [grp, -1, -1, '', 0]
        else:
            told = cursor.stale.get(grp, frozenset())
            groups += [grp, cursor.clocks[grp], cursor.cutoffs.get(grp, -1),
                       cursor.epochs.get(grp, ''), len(told), *told]
    route = (codec.Keys(prefix, group).meta if group is not None
             else codec.groups_key(prefix))
    return [route, codec.space(prefix), epoch, member_ttl * US,
            gone_retention * US, PURGE_LIMIT, '1' if group is None else '0',
            '1' if full else '0', 'json', int(down_time * US), *groups]


def parse_reply(reply: list[Any], cursor: codec.Cursor | None,
                parsed: bool) -> Snapshot:
    """The snapshot of a reply of the snapshot script.

    ``cursor`` is the one the read was made with; ``parsed`` says the
    reply's parts are JSON objects (format json), not flat pairs.  Raises
    ValueError when a part is not JSON (then read again as pairs, which
    tells the bad record apart).
    """
    complete = bool(reply[0])
    epochs: dict[str, str] = {}
    clocks: dict[str, int] = {}
    cutoffs: dict[str, int] = {}
    stale: dict[str, frozenset[str]] = {}
    if not complete and cursor is not None:
        epochs.update(cursor.epochs)
        clocks.update(cursor.clocks)
        cutoffs.update(cursor.cutoffs)
        stale.update(cursor.stale)
    reports: list[Report] = []
    invalid: list[InvalidRecord] = []
    gone: list[tuple[str, str]] = []
    ages: dict[str, dict[str, float]] = {}
    # One float per age told (to the millisecond) in the whole read.
    shared: dict[float, float] = {}
    for (raw_group, raw_clock, raw_cutoff, parts, gone_members,
         raw_now, raw_epoch) in reply[1]:
        grp = codec.text(raw_group)
        # A group read whole starts its stale members afresh.
        whole = complete or grp not in clocks
        epochs[grp] = codec.text(raw_epoch)
        clocks[grp] = int(codec.text(raw_clock))
        cutoff = cutoffs[grp] = int(codec.text(raw_cutoff))
        now = int(codec.text(raw_now))
        told = set() if whole else set(stale.get(grp, ()))
        group_ages: dict[str, float] = {}
        # A part at a time: what decoding one needs is freed before the
        # next, so a big group never holds all its raw records.
        for raw_records, raw_seqs, raw_beats in parts:
            # The ages are keyed by the reports' own member id strings:
            # an observer keeps both, and one string per member is enough.
            ids: dict[str, str] = {}
            for item in decode_part(grp, raw_records, raw_seqs, parsed):
                if isinstance(item, Report):
                    reports.append(item)
                    ids[item.member_id] = item.member_id
                else:
                    invalid.append(item)
            beats = (json.loads(raw_beats).items() if parsed
                     else codec.decode_pairs(raw_beats))
            group_ages.update(codec.ages(beats, now, cutoff, told, ids,
                                         shared))
        ages[grp] = group_ages
        left = [codec.text(m) for m in gone_members]
        gone.extend((grp, member_id) for member_id in left)
        told.difference_update(left)
        stale[grp] = frozenset(told)
    return Snapshot(tuple(reports), tuple(invalid), complete=complete,
                    gone=tuple(gone),
                    cursor=codec.Cursor(epochs, clocks, cutoffs, stale),
                    beats=Beats(ages))


def decode_part(group: str, raw_records: Any, raw_seqs: Any,
                parsed: bool) -> list[Report | InvalidRecord]:
    """The reports of one part of a snapshot reply (see scripts)."""
    if parsed:
        seqs = json.loads(raw_seqs)
        return [codec.from_record(group, member_id,
                                  codec.with_seq(rec, member_id, seqs))
                for member_id, rec in json.loads(raw_records).items()]
    numbers = {member_id: int(seq)
               for member_id, seq in codec.decode_pairs(raw_seqs)}
    return [codec.decode(group, member_id, raw, numbers)
            for member_id, raw in codec.decode_pairs(raw_records)]


def merged(groups: Sequence[str], parts: Sequence[Snapshot],
           cursor: codec.Cursor | None, complete: bool) -> Snapshot:
    """One snapshot of ``parts``, the snapshots of ``groups``."""
    epochs: dict[str, str] = {}
    clocks: dict[str, int] = {}
    cutoffs: dict[str, int] = {}
    stale: dict[str, frozenset[str]] = {}
    ages: dict[str, dict[str, float]] = {}
    if cursor is not None and not complete:
        epochs.update(cursor.epochs)
        clocks.update(cursor.clocks)
        cutoffs.update(cursor.cutoffs)
        stale.update(cursor.stale)
    for grp, part in zip(groups, parts, strict=True):
        # A part's cursor also holds what it was given for other groups.
        got: codec.Cursor = part.cursor
        epochs[grp] = got.epochs[grp]
        clocks[grp] = got.clocks[grp]
        cutoffs[grp] = got.cutoffs[grp]
        stale[grp] = got.stale[grp]
        if part.beats is not None:
            ages[grp] = dict(part.beats.ages[grp])
    return Snapshot(tuple(r for part in parts for r in part.reports),
                    tuple(r for part in parts for r in part.invalid),
                    complete=complete,
                    gone=tuple(k for part in parts for k in part.gone),
                    cursor=codec.Cursor(epochs, clocks, cutoffs, stale),
                    beats=Beats(ages))
