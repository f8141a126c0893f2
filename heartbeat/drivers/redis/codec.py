"""Pure encoding of reports, key names and read cursors for redis.

Nothing here talks to a server, so all of it is tested without one.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import json
import math
from typing import Any

from heartbeat.drivers import base
from heartbeat.drivers import record
from heartbeat.model import InvalidRecord
from heartbeat.model import Report


#: Version of the layout of the keys and records; part of every key name
#: but the flags, so that two versions never read each other's data.
PROTOCOL = 2


def space(prefix: str) -> str:
    """What every key name of this protocol under ``prefix`` starts with."""
    return '%s:v%d' % (prefix, PROTOCOL)


@dataclasses.dataclass(frozen=True)
class Keys:
    """Names of the keys of one group under a prefix.

    ``reports`` (hash member -> record, written on a change only),
    ``seqs`` (hash member -> seq of its newest beat), ``live`` (sorted set
    member -> tick of its newest beat), ``index`` (sorted set member ->
    tick of its newest change), ``gone`` (sorted set member -> tick of
    its deletion), ``meta`` (hash: ``clock``, the group's highest tick,
    and ``floor``, the tick below which ``gone`` has been trimmed) and
    ``owners`` (hash member -> token of the process publishing it).

    The group's name is a hash tag (``{...}``), so that on Redis Cluster
    every key of a group lives in one slot and one script call still
    does one beat.
    """

    prefix: str
    group: str

    @property
    def base(self) -> str:
        """What every key name of the group starts with."""
        return '%s:{%s}:' % (space(self.prefix), self.group)

    def _key(self, what: str) -> str:
        return self.base + what

    @property
    def reports(self) -> str:
        return self._key('reports')

    @property
    def seqs(self) -> str:
        return self._key('seqs')

    @property
    def live(self) -> str:
        return self._key('live')

    @property
    def index(self) -> str:
        return self._key('index')

    @property
    def gone(self) -> str:
        return self._key('gone')

    @property
    def meta(self) -> str:
        return self._key('meta')

    @property
    def owners(self) -> str:
        return self._key('owners')

    def all(self) -> list[str]:
        return [self.reports, self.live, self.gone, self.meta, self.owners]


def groups_key(prefix: str) -> str:
    return '%s:groups' % space(prefix)


def version_key(prefix: str) -> str:
    """The protocol version of the data under ``prefix`` (set once)."""
    return '%s:version' % prefix


def old_keys(prefix: str) -> list[str]:
    """Keys that only protocol 1 writes: their presence means a v1 peer."""
    return ['%s:groups' % prefix, '%s:epoch' % prefix]


def channel(prefix: str) -> str:
    return '%s:changes' % space(prefix)


def flags_key(prefix: str) -> str:
    """The hash of the cluster flags (flag name -> value) under ``prefix``.

    One hash per prefix, which is per cluster: the flags belong to no
    group, and a group's keys all sit under ``<prefix>:v<N>:{``, so no
    group name can collide with it.  It is not versioned: the flags (the
    global maintenance) outlive an upgrade of the protocol.
    """
    return '%s:flags' % prefix


def decode_flags(raw: Mapping[Any, Any], where: str) -> dict[str, str]:
    """The valid flags of an HGETALL reply (bytes or str keys and values).

    Entries that break the flag bounds (non-ASCII bytes included) are left
    out, and logged, rather than hiding the others.
    """
    def text_of(item: bytes | str) -> str:
        # Undecodable bytes become U+FFFD, which the bounds then refuse.
        if isinstance(item, bytes):
            return item.decode('utf-8', 'replace')
        return item

    return base.valid_flags(
        {text_of(name): text_of(value) for name, value in raw.items()},
        where)


@dataclasses.dataclass(frozen=True)
class PublishArgs:
    """Arguments of the publish script for one member, encoded once.

    ``head`` (the group's meta key, the script's one key, then base key,
    member id, owner token) goes with every beat; ``names`` (key space,
    group) only with a change or a leave, which is what needs them on the
    server.
    """

    head: tuple[bytes, ...]
    names: tuple[bytes, ...]

    @classmethod
    def of(cls, keys: Keys, member_id: str, owner: str) -> PublishArgs:
        return cls((keys.meta.encode(), keys.base.encode(),
                    member_id.encode(), owner.encode()),
                   (space(keys.prefix).encode(), keys.group.encode()))

    def beat(self, seq: int, record: bytes,
             flag: bytes | None) -> list[bytes]:
        """The arguments of one beat (``flag`` None: a plain beat).

        A plain beat carries its seq and nothing of the record: the
        server keeps the record of the last change.
        """
        if flag is None:
            return [*self.head, b'%d' % seq]
        return [*self.head, b'%d' % seq, record, flag, *self.names]


def location(group: str) -> str:
    """Where the records of ``group`` live (:func:`record.location`)."""
    return record.location('redis', group)


def encode(report: Report) -> bytes:
    """The record stored for ``report`` (compact JSON)."""
    return record.ENCODER.encode(record.as_record(report)).encode()


#: Payload value types whose equality decides their JSON text, given the
#: type (1, 1.0 and True are equal but encode apart; so the type is kept).
_PLAIN = frozenset({str, int, float, bool, type(None)})


class RecordEncoder:
    """Encodes successive reports of one member, reusing what did not change.

    Between two beats usually only ``seq`` and ``written_at`` differ, so
    the rest of the record is encoded once and kept while it stays the
    same.  The record is byte for byte :func:`encode`'s.  A report is
    encoded in full, and nothing is kept, when reuse could be wrong: a
    payload value that is a container (it may have been changed in place),
    a zero float (0.0 and -0.0 are equal but encode apart), a non-int
    ``seq`` or a ``written_at`` that is not a finite float.  Safe to share
    between threads: the kept parts are replaced in one assignment.

    The kept parts double as a token of the state: the same object as long
    as everything but ``seq`` and ``written_at`` stays the same (types
    included), so "did the state change" is one identity test.
    """

    def __init__(self) -> None:
        #: (what must be equal to reuse, bytes between seq and at, end).
        self._kept: tuple[tuple[Any, ...], bytes, bytes] | None = None

    @staticmethod
    def _key(report: Report) -> tuple[Any, ...]:
        inc, state, score, left = (report.incarnation, report.state,
                                   report.score, report.left)
        return (type(inc), inc, type(state), state, type(score), score,
                type(left), left,
                [(k, type(v), v) for k, v in report.payload.items()])

    @staticmethod
    def _reusable(key: tuple[Any, ...]) -> bool:
        pairs = [(key[i], key[i + 1]) for i in range(0, 8, 2)]
        pairs += [(kind, value) for _, kind, value in key[8]]
        return all(kind in _PLAIN and (kind is not float or value != 0.0)
                   for kind, value in pairs)

    def encode(self, report: Report) -> tuple[bytes, object | None]:
        """The record of ``report`` (``encode(report)``) and a state token.

        The token is None when nothing could be kept; then compare
        :func:`state_of` instead.
        """
        seq, at = report.seq, report.written_at
        if (type(seq) is not int or type(at) is not float
                or not math.isfinite(at)):
            return encode(report), None
        key = self._key(report)
        kept = self._kept
        if kept is not None and kept[0] == key:
            return b'{"seq":%d%s%r%s' % (seq, kept[1], at, kept[2]), kept
        record = encode(report)
        if self._reusable(key):
            head = len(b'{"seq":%d' % seq)
            at_text = b',"at":%r' % at
            # "at" is the last key but one, so its last occurrence is it.
            at_pos = record.rindex(at_text + b',"left":')
            kept = (key, record[head:at_pos + 6],
                    record[at_pos + len(at_text):])
        else:
            kept = None
        self._kept = kept
        return record, kept


def state_of(report: Report) -> str:
    """What must differ between two reports for a state change push.

    Encoded, not a copy of the values: a payload changed in place, even
    deep inside, still differs from what was kept of it.
    """
    return record.ENCODER.encode([report.state, report.score,
                                  dict(report.payload), report.left])


def decode(group: str, member_id: str, raw: bytes | str,
           seqs: Mapping[str, int] | None = None) -> Report | InvalidRecord:
    """The report stored in ``raw``, or why it cannot be trusted.

    ``seqs`` holds the seqs of the members' newest beats (see
    :func:`with_seq`).
    """
    try:
        rec = json.loads(raw)
    except ValueError as err:
        return record.invalid(group, member_id, location(group),
                              'unreadable record: %s' % err)
    return from_record(group, member_id,
                       with_seq(rec, member_id, seqs or {}))


def with_seq(rec: Any, member_id: str, seqs: Mapping[str, int]) -> Any:
    """A parsed record carrying the seq of the member's newest beat.

    A record is written on a change only; the seq of every beat is kept
    beside it, so that a reader sees the member's current seq.
    """
    seq = seqs.get(member_id)
    if seq is not None and isinstance(rec, dict) and 'seq' in rec:
        rec['seq'] = seq
    return rec


def ages(beats: Iterable[tuple[str, Any]], now: int, cutoff: int,
         stale: set[str], ids: Mapping[str, str] | None = None,
         shared: dict[float, float] | None = None) -> dict[str, float]:
    """Seconds since the newest beat of each member of a snapshot reply.

    ``beats`` are (member, tick) pairs (ticks in microseconds of the
    server's clock, as numbers or their text), ``now`` the server's time
    of the read.  ``stale`` is updated in place: a member whose tick is at
    or below ``cutoff`` (its beat is older than service_down_time) is
    added, any other removed.  ``ids`` maps member ids to the string
    objects to key the ages by (those of the reports read with them).

    An age is kept to the millisecond, rounded away from the cutoff (up
    for a member at or below it, down for the others), so that the age
    says on which side of service_down_time the server found the member
    (an observer judges by the age what the server's told set holds); the
    members told the same age share one float (an observer of a big group
    holds them until it folds the read): ``shared`` holds those of the
    read (pass one dict for every part of a read).
    """
    out: dict[str, float] = {}
    same = (ids or {}).get
    if shared is None:
        shared = {}
    for member_id, raw in beats:
        member_id = same(member_id, member_id)
        tick = float(raw)
        if tick <= cutoff:
            age = -((tick - now) // 1000) / 1000
            stale.add(member_id)
        else:
            age = max(0.0, (now - tick) // 1000 / 1000)
            stale.discard(member_id)
        out[member_id] = shared.setdefault(age, age)
    return out


def from_record(group: str, member_id: str,
                rec: Any) -> Report | InvalidRecord:
    """The report in a parsed record, or why it cannot be trusted."""
    return record.from_record(group, member_id, rec, location(group))


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where an incremental reader stopped.

    ``epochs`` names, per group, the dataset read (it changes when the
    group's data is lost); ``clocks`` holds, per group, the highest tick
    already read;
    ``cutoffs``, per group, the server tick at or below which a beat was
    older than service_down_time at that read (beats up to it were told
    stale then); ``stale``, per group, the members told stale and not
    seen beating since, whose recovery the next read looks for.
    """

    epochs: Mapping[str, str]
    clocks: Mapping[str, int]
    cutoffs: Mapping[str, int] = dataclasses.field(default_factory=dict)
    stale: Mapping[str, frozenset[str]] = dataclasses.field(
        default_factory=dict)


def decode_pairs(flat: Sequence[Any]) -> list[tuple[str, Any]]:
    """[k1, v1, k2, v2, ...] -> [(k1, v1), ...] with str keys."""
    return [(_text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def text(value: bytes | str) -> str:
    """A reply item as str."""
    return _text(value)
