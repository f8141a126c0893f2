"""The report record shared by the key-value drivers (redis, tooz).

Both keep a member's report as one small JSON-compatible object:
``{"seq", "inc", "state", "score", "data", "at", "left"}``.  This module
builds it from a :class:`~heartbeat.model.Report` and checks it on the way
back, so a record written by one heartbeat is read the same way by every
driver that stores it.
"""

from __future__ import annotations

from typing import Any

from heartbeat.model import InvalidRecord
from heartbeat.model import Report


def as_record(report: Report) -> dict[str, Any]:
    """The record stored for ``report``."""
    return {'seq': report.seq, 'inc': report.incarnation,
            'state': report.state, 'score': report.score,
            'data': dict(report.payload), 'at': report.written_at,
            'left': report.left}


def from_record(group: str, member_id: str, rec: Any, where: str,
                what: str = 'record') -> Report | InvalidRecord:
    """The report in a parsed record, or why it cannot be trusted.

    ``where`` locates the record for observers; ``what`` names it in the
    reason ("record", "capabilities").
    """
    try:
        if not isinstance(rec, dict):
            raise TypeError('%s is not an object' % what)
        seq = rec['seq']
        inc = rec['inc']
        if type(seq) is not int or type(inc) is not int:
            raise TypeError('seq and inc must be integers')
        data = rec.get('data') or {}
        if not isinstance(data, dict):
            raise TypeError('data must be an object')
        return Report(member_id=member_id, group=group, seq=seq,
                      incarnation=inc, state=rec.get('state'),
                      score=rec.get('score'), payload=data,
                      written_at=float(rec.get('at') or 0.0),
                      left=bool(rec.get('left')), location=where)
    except (ValueError, TypeError, KeyError) as err:
        return InvalidRecord(where, 'unreadable %s: %s' % (what, err))
