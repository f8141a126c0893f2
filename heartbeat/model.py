"""The data that flows through heartbeat.

A :class:`Report` is what a member publishes on every beat.  A
:class:`Snapshot` is what one batched read of a group returns.  A
:class:`Member` is what an observer knows about one member, judged on the
observer's own clock.  The :class:`Event` subclasses are what the monitor
tells subscribers when it notices a member join, go up or down, leave, or
change its state.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import dataclasses
import enum
import json
from typing import Any
from typing import ClassVar


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    """One beat of one member.

    ``seq`` grows by one on every beat of an incarnation; ``incarnation`` is
    chosen at random when the member process starts, so a restarted member
    is told apart from a live one even when its seq starts lower.
    ``written_at`` is the writer's wall clock and is informational only: an
    observer never compares it with its own clock.
    """

    member_id: str
    group: str
    seq: int
    incarnation: int
    state: str | None = None
    score: int | None = None
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    written_at: float = 0.0
    left: bool = False
    location: str = ''

    @property
    def token(self) -> tuple[int, int]:
        """What must change between two beats for the member to be alive."""
        return (self.incarnation, self.seq)


class Payload(Mapping[str, Any]):
    """A read report's payload, kept as its JSON text, decoded when read.

    An observer holds the last report of every member it watches, and a
    payload is read far less often than it is held: its UTF-8 text is a
    third of the memory of the dict, its keys and values.  Read-only;
    every read decodes it anew (``dict(payload)`` once to read it often).
    """

    __slots__ = ('text',)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def _value(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.text)
        return value

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._value().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Payload):
            return self.text == other.text
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return 'Payload(%s)' % self.text.decode()


# The slot descriptors of Report, in field order: they store a field without
# the frozen __setattr__ the generated __init__ goes through.
(_set_member_id, _set_group, _set_seq, _set_incarnation, _set_state,
 _set_score, _set_payload, _set_written_at, _set_left,
 _set_location) = [vars(Report)[field.name].__set__
                   for field in dataclasses.fields(Report)]
_new = object.__new__


class _PayloadField:
    """Report.payload: the slot, where a text stands for its Payload.

    A decoder stores a read payload as its JSON text alone (UTF-8 bytes),
    one object per report instead of two (an observer holds a report per
    member); reading the field hands a :class:`Payload` of it.  Everything
    else is stored and read as it is.
    """

    __slots__ = ('slot',)

    def __init__(self, slot: Any) -> None:
        self.slot = slot

    def __get__(self, report: Report | None, owner: type[Report]) -> Any:
        if report is None:
            return self
        value = self.slot.__get__(report, owner)
        return Payload(value) if type(value) is bytes else value

    def __set__(self, report: Report, value: Any) -> None:
        self.slot.__set__(report, value)


Report.payload = _PayloadField(  # type: ignore[assignment,misc]
    vars(Report)['payload'])


def decoded_report(member_id: str, group: str, seq: int, incarnation: int,
                   state: str | None, score: int | None,
                   payload: Mapping[str, Any] | bytes, written_at: float,
                   left: bool,
                   location: str, /) -> Report:
    """``Report(...)`` with every field given, for decoders of many records.

    The same object the constructor makes, in about half the time: a frozen
    dataclass stores each field through ``object.__setattr__``, and a
    monitor decodes a report per changed member per cycle.  The values are
    taken as they are (the decoder has checked them); ``payload`` may be
    the UTF-8 JSON text of an object (read back as a :class:`Payload`).
    """
    report: Report = _new(Report)
    _set_member_id(report, member_id)
    _set_group(report, group)
    _set_seq(report, seq)
    _set_incarnation(report, incarnation)
    _set_state(report, state)
    _set_score(report, score)
    _set_payload(report, payload)
    _set_written_at(report, written_at)
    _set_left(report, left)
    _set_location(report, location)
    return report


@dataclasses.dataclass(frozen=True)
class InvalidRecord:
    """A record the driver found but could not trust, and why."""

    location: str
    reason: str
    #: (group, member_id) of the member the record is of, where the
    #: backend names it beside the record (a key-value store); None where
    #: only its location says whose it was (a storage slot).
    key: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One consistent read of a group (or of every group).

    A complete snapshot lists every member; a member absent from it is gone.
    An incremental snapshot (``complete=False``, from a driver with the
    INCREMENTAL capability asked for changes ``since`` a cursor) lists only
    the members whose report changed; absent members are unchanged, except
    the (group, member_id) pairs in ``gone``.  ``cursor`` is what to pass as
    ``since`` on the next read.
    """

    reports: tuple[Report, ...]
    invalid: tuple[InvalidRecord, ...] = ()
    complete: bool = True
    gone: tuple[tuple[str, str], ...] = ()
    cursor: Any = None
    #: Liveness told by the backend on its own clock (None: the observer
    #: judges it from how the reports change); see :class:`Beats`.
    beats: Beats | None = None


@dataclasses.dataclass(frozen=True)
class Beats:
    """Liveness a backend tells on its own clock, so beats cost no reads.

    A backend that orders every beat of a group on one clock (the redis
    server's) need not hand each beat to the observer: a beat that changes
    nothing but the seq moves the member's tick on the server, and the
    snapshot's reports list only changes (state, score, payload,
    incarnation, leave).  Instead each read tells, per group it covers,
    the age of the newest beat of the members whose liveness it tells:
    the members of its reports, those whose newest beat turned older than
    service_down_time since the previous read, and those that beat again
    since they were told so (a complete read tells every member).  Every
    other member of those groups is as the previous read told it: the
    observer's work per read is the number of such events, not of
    members.  A member whose age reached service_down_time is DOWN.
    """

    #: group -> member id -> seconds since its newest beat at the read,
    #: on the backend's clock.  Every group the read covers is a key.
    ages: Mapping[str, Mapping[str, float]]


class Status(enum.Enum):
    """What an observer concludes about a member."""

    #: The member's record changed within service_down_time.
    UP = 'up'
    #: The member's record did not change within service_down_time.
    DOWN = 'down'
    #: Seen, but not yet observed long enough to judge (fresh observer).
    UNKNOWN = 'unknown'
    #: The member left its group cleanly.
    LEFT = 'left'


@dataclasses.dataclass(frozen=True)
class Member:
    """What an observer knows of one member at one moment."""

    member_id: str
    group: str
    status: Status
    report: Report
    #: Observer-clock (monotonic) time the member's token last changed.
    last_change: float
    #: Seconds since the token last changed, on the observer's clock.
    last_change_age: float
    #: Wall-clock time of the last change as seen by the observer (display).
    last_change_wall: float
    #: Whether the member's record is currently unreadable.
    invalid_reason: str | None = None
    #: How unusual its current silence is for its rhythm (phi; None until
    #: two intervals were seen).  Reported only: see
    #: :mod:`heartbeat.suspicion`.
    suspicion: float | None = None

    @property
    def up(self) -> bool:
        """True while the member is judged alive (unknown counts as alive)."""
        return self.status in (Status.UP, Status.UNKNOWN)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Something an observer noticed about one member.

    ``observed_at`` is the observer's monotonic clock when the change was
    noticed, ``observed_wall`` its wall clock (display only).  ``replay`` is
    True for the events a new subscriber receives first, describing the
    current picture rather than a change.
    """

    #: Short name of the event type (``joined``, ``up``, ...).
    kind: ClassVar[str] = 'event'

    group: str
    member_id: str
    report: Report
    observed_at: float
    observed_wall: float
    replay: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(group, member_id) of the member the event is about."""
        return (self.group, self.member_id)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MemberJoined(Event):
    """The observer sees a member (or a new incarnation of it) first.

    Its liveness is not judged yet: MemberUp or MemberDown follows.
    """

    kind: ClassVar[str] = 'joined'


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MemberUp(Event):
    """The member's report changed: it is alive."""

    kind: ClassVar[str] = 'up'


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MemberDown(Event):
    """The member's report did not change within service_down_time."""

    kind: ClassVar[str] = 'down'

    #: Why: how long the report stood still, or why it is unreadable.
    reason: str = ''


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MemberLeft(Event):
    """The member left its group.

    ``clean`` is True when the member announced that it left, False when
    its record disappeared from the backend without such a notice.
    """

    kind: ClassVar[str] = 'left'

    clean: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MemberStateChanged(Event):
    """The state a live member reports changed from ``old_state``."""

    kind: ClassVar[str] = 'state_changed'

    old_state: str | None = None
    new_state: str | None = None


#: Event types that carry a liveness status (the others carry state).
STATUS_EVENTS: tuple[type[Event], ...] = (
    MemberJoined, MemberUp, MemberDown, MemberLeft)
