"""The reports of one member, numbered: what the reporter and broker send.

A member's reports carry one incarnation (random, per process) and a seq
that grows by one per report; observers judge liveness by that pair
changing.  :class:`ReportSequence` is the one place that builds them, for
the library's :class:`~heartbeat.reporter.Reporter` and for the broker's
writer thread alike.
"""

from __future__ import annotations

from collections.abc import Mapping
import random
import time
from typing import Any

from heartbeat.model import Report

#: Random bits of an incarnation.
INCARNATION_BITS = 60


class ReportSequence:
    """Builds the successive reports of ``member_id`` in ``group``."""

    def __init__(self, member_id: str, group: str) -> None:
        self.member_id = member_id
        self.group = group
        # 60 random bits: enough to tell restarts apart, and two digits
        # of a Python int (32 bytes in every observer, not 48 for 63).
        self.incarnation = random.SystemRandom().getrandbits(INCARNATION_BITS)
        #: The seq of the last report built (0: none yet).
        self.seq = 0

    def next(self, state: str | None, score: int | None,
             payload: Mapping[str, Any], left: bool = False) -> Report:
        """The next report, dated now on the wall clock."""
        self.seq += 1
        return Report(member_id=self.member_id, group=self.group,
                      seq=self.seq, incarnation=self.incarnation,
                      state=state, score=score, payload=payload,
                      written_at=time.time(), left=left)
