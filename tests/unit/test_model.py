"""The data model: reports built by decoders are the constructor's."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from heartbeat import model
from heartbeat.model import Report


def _values() -> tuple[object, ...]:
    # A distinct value per field, so a field stored in another's place shows.
    return ('m1', 'g1', 7, 99, 'ready', 3400, {'vm': 'up'}, 12.5, True,
            'redis g1/m1')


def test_decoded_report_is_the_constructors_report() -> None:
    values = _values()
    built = Report(*values)  # type: ignore[arg-type]
    decoded = model.decoded_report(*values)  # type: ignore[arg-type]
    assert decoded == built
    assert type(decoded) is Report
    for field, value in zip(dataclasses.fields(Report), values, strict=True):
        assert getattr(decoded, field.name) is value
    assert decoded.token == (99, 7)
    assert repr(decoded) == repr(built)


def test_decoded_report_is_frozen() -> None:
    decoded = model.decoded_report(*_values())  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.seq = 8  # type: ignore[misc]
    assert dataclasses.replace(decoded, seq=8).seq == 8


def test_decoded_report_takes_every_field() -> None:
    names = [field.name for field in dataclasses.fields(Report)]
    assert len(names) == len(_values())
    with pytest.raises(TypeError):
        model.decoded_report(*_values()[:-1])  # type: ignore[call-arg]


def test_a_payload_decoded_as_text_reads_as_a_mapping() -> None:
    read = model.decoded_report('m', 'g', 3, 7, 'up', 10, b'{"host":"h1"}',
                                1.5, False, 'redis g')
    assert isinstance(read.payload, model.Payload)
    assert read.payload['host'] == 'h1' and dict(read.payload) == {
        'host': 'h1'}
    built = model.Report('m', 'g', 3, 7, 'up', 10, {'host': 'h1'}, 1.5,
                         location='redis g')
    assert built.payload == {'host': 'h1'}
    assert not isinstance(built.payload, model.Payload)
    # The same report, however its payload is kept.
    assert read == built
    assert pickle.loads(pickle.dumps(read)) == read
    assert dataclasses.replace(read, seq=4).payload == {'host': 'h1'}
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.payload = {}
