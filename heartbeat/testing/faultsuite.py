"""Rows of a fault suite: what was done, what was measured, the target.

Each case of a fault suite (``tox -e reliability``) records one
:class:`Row`; the suite prints every row as one table and writes them as
JSON, so one run says which fault met its target and by how much::

    suite = FaultSuite()
    row = suite.record('redis SIGSTOP 2.0s', done='1000 members ...',
                       measured={'false_down': 0}, target='false_down == 0',
                       passed=True)
    print(suite.table())
    suite.write_json('.reliability.json')

Also the small statistics such rows report (:func:`percentile`).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import json
import math
import time
from typing import Any

#: Widths of the table's columns (the last one, measured, is not cut).
WIDTHS = {'result': 4, 'name': 40, 'done': 48, 'target': 40}


@dataclasses.dataclass(frozen=True)
class Row:
    """One fault: what was done, the numbers measured, the target."""

    name: str
    done: str
    measured: Mapping[str, Any]
    target: str
    passed: bool
    #: Seconds the case took, from its start to its row.
    seconds: float = 0.0

    @property
    def result(self) -> str:
        return 'pass' if self.passed else 'FAIL'

    def to_dict(self) -> dict[str, Any]:
        return {'name': self.name, 'done': self.done,
                'measured': dict(self.measured), 'target': self.target,
                'passed': self.passed, 'seconds': round(self.seconds, 2)}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return '%.3g' % value if abs(value) < 1000 else '%.0f' % value
    return str(value)


def _cell(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[:width - 1] + '~'


class FaultSuite:
    """The rows of one run, in the order they were recorded."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.started = time.monotonic()

    def record(self, name: str, done: str, measured: Mapping[str, Any],
               target: str, passed: bool, seconds: float = 0.0) -> Row:
        row = Row(name, done, dict(measured), target, bool(passed), seconds)
        self.rows.append(row)
        return row

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def table(self) -> str:
        """Every row, one per line, under a header."""
        def line(values: Sequence[str], measured: str) -> str:
            cells = [_cell(v, w) for v, w in zip(
                values, WIDTHS.values(), strict=True)]
            return ' | '.join([*cells, measured]).rstrip()

        out = [line(['', 'fault', 'what was done', 'target'], 'measured')]
        out.append('-' * len(out[0]))
        for row in self.rows:
            measured = ', '.join('%s=%s' % (k, _number(v))
                                 for k, v in row.measured.items())
            out.append(line([row.result, row.name, row.done, row.target],
                            measured))
        failed = sum(not row.passed for row in self.rows)
        out.append('%d faults, %d failed, %.0f s' % (
            len(self.rows), failed, time.monotonic() - self.started))
        return '\n'.join(out)

    def to_dict(self) -> dict[str, Any]:
        return {'passed': self.passed,
                'seconds': round(time.monotonic() - self.started, 1),
                'rows': [row.to_dict() for row in self.rows]}

    def write_json(self, path: str) -> None:
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write('\n')


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile of ``samples`` (nearest rank)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = math.ceil(fraction * len(ordered)) - 1
    return ordered[min(len(ordered) - 1, max(0, rank))]
