"""The report record shared by the key-value drivers (redis, tooz).

Both keep a member's report as one small JSON-compatible object:
``{"seq", "inc", "state", "score", "data", "at", "left", "v"}``.  This
module builds it from a :class:`~heartbeat.model.Report` and checks it on
the way back, so a record written by one heartbeat is read the same way by
every driver that stores it.  ``v`` is the record's format version (a
record without one is of version 1): a reader refuses a newer record as
such, with its own reason, rather than misread fields it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import sys
from typing import Any
from typing import NoReturn

from heartbeat import model
from heartbeat.model import decoded_report
from heartbeat.model import InvalidRecord
from heartbeat.model import Report


class _EmptyPayload(dict[str, Any]):
    """An empty dict that stays empty (shared by many reports)."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError('the payload of a read report is read-only')

    __setitem__ = __delitem__ = _refuse
    update = setdefault = pop = popitem = clear = _refuse
    __ior__ = _refuse


#: The payload of every report read without one: one object, read-only,
#: instead of an empty dict per member an observer holds.
EMPTY_PAYLOAD: dict[str, Any] = _EmptyPayload()

#: The payload of a report read (defined with the report; kept here, where
#: it was first, for those who import it from here).
Payload = model.Payload

#: Compact JSON, as the records are written: one encoder for every record
#: (building one per call costs about a quarter of the encoding).
ENCODER = json.JSONEncoder(separators=(',', ':'))


#: Scores read, one int object per value (members share a few).
_SCORES: dict[int, int] = {}
#: Most distinct scores kept in _SCORES.
_SCORES_KEPT = 4096
#: States longer than this are kept as read, not interned.
INTERNED_STATE = 64
#: The format version of the records written (``v``), and the newest read.
RECORD_VERSION = 1


def as_record(report: Report) -> dict[str, Any]:
    """The record stored for ``report``."""
    return {'seq': report.seq, 'inc': report.incarnation,
            'state': report.state, 'score': report.score,
            'data': dict(report.payload), 'at': report.written_at,
            'left': report.left, 'v': RECORD_VERSION}


def location(backend: str, group: str) -> str:
    """Where the records of ``group`` live in a key-value ``backend``.

    One string per group, shared by the reports of its members (a string
    per member would cost an observer 76 bytes a member); an unreadable
    record names its member too (see :func:`from_record`).
    """
    return sys.intern('%s %s' % (backend, group))


def from_record(group: str, member_id: str, rec: Any, where: str,
                what: str = 'record') -> Report | InvalidRecord:
    """The report in a parsed record, or why it cannot be trusted.

    ``where`` locates the group's records (:func:`location`); an invalid
    record is located at ``where/member_id`` and names its member.
    ``what`` names the record in the reason ("record", "capabilities").
    Called once per changed member on every monitor cycle, so it checks
    what it must and nothing twice.
    """
    try:
        if not isinstance(rec, dict):
            raise TypeError('%s is not an object' % what)
        get = rec.get
        version = get('v', 1)
        if type(version) is not int:
            raise TypeError('v (format version) must be an integer')
        if version > RECORD_VERSION:
            return invalid(group, member_id, where,
                           newer_reason(what, version))
        seq = rec['seq']
        inc = rec['inc']
        if type(seq) is not int or type(inc) is not int:
            raise TypeError('seq and inc must be integers')
        data = get('data')
        if not isinstance(data, dict) and data is not None:
            raise TypeError('data must be an object')
        # A payload read is kept as its text (see model.Payload).
        payload: Mapping[str, Any] | bytes = (
            ENCODER.encode(data).encode() if data else EMPTY_PAYLOAD)
        state = get('state')
        if type(state) is str and len(state) <= INTERNED_STATE:
            # Members share a handful of states: one string each.
            state = sys.intern(state)
        score = get('score')
        if type(score) is int:
            # ...and a handful of scores.
            score = _SCORES.get(score, score)
            if len(_SCORES) < _SCORES_KEPT:
                _SCORES.setdefault(score, score)
        at = get('at')
        return decoded_report(member_id, group, seq, inc, state, score,
                              payload, float(at) if at else 0.0,
                              bool(get('left')), where)
    except (ValueError, TypeError, KeyError) as err:
        return invalid(group, member_id, where,
                       'unreadable %s: %s' % (what, err))


def invalid(group: str, member_id: str, where: str,
            reason: str) -> InvalidRecord:
    """The record of ``member_id`` in the group at ``where`` is unreadable."""
    return InvalidRecord('%s/%s' % (where, member_id), reason,
                         (group, member_id))


def newer_reason(what: str, version: int) -> str:
    """Why a record of a newer format version is not read."""
    return ('%s of a newer format (version %d; this heartbeat reads up to '
            '%d): upgrade this observer' % (what, version, RECORD_VERSION))
