"""Prometheus expositions read back as samples, for tests.

::

    samples = parse(prometheus_client.generate_latest(registry).decode())
    assert value(samples, 'heartbeat_members', group='g', status='up') == 3

Needs prometheus_client (the ``metrics`` extra).
"""

from __future__ import annotations

from typing import Any

#: {(sample name, its labels as a sorted tuple): value}.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition."""
    from prometheus_client import parser

    out: Samples = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = (
                sample.value)
    return out


def value(samples: Samples, name: str, **labels: Any) -> float | None:
    """The value of one sample (None when there is none)."""
    return samples.get((name, tuple(sorted(labels.items()))))
