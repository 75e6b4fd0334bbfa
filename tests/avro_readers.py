"""Read Avro container files the way archive users do: fastavro and Apache avro (PyPI ``avro``), default settings.

Two independent implementations: an object only counts as readable when both read every record and agree on it.
Timestamps come back as datetimes from both; ``millis`` turns them back into the delivered integers.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import avro.datafile
import avro.io
import fastavro

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_fastavro(body: bytes) -> list[dict[str, Any]]:
    return [cast("dict[str, Any]", record) for record in fastavro.reader(io.BytesIO(body))]


def read_apache(body: bytes) -> list[dict[str, Any]]:
    with avro.datafile.DataFileReader(io.BytesIO(body), avro.io.DatumReader()) as reader:
        return [cast("dict[str, Any]", record) for record in reader]


def read_both(body: bytes) -> list[dict[str, Any]]:
    """The records of ``body`` as fastavro reads them, after checking Apache avro reads the same records."""
    fast = read_fastavro(body)
    apache = read_apache(body)
    assert _comparable(apache) == _comparable(fast), "fastavro and Apache avro read different records"
    return fast


def millis(moment: datetime | None) -> int | None:
    """A timestamp-millis datetime back to integer milliseconds (exact: no float on the way)."""
    return None if moment is None else (moment - _EPOCH) // timedelta(milliseconds=1)


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return millis(value)
    if isinstance(value, float):
        return repr(value)  # NaN is not equal to itself, yet both readers read the same NaN
    if isinstance(value, dict):
        return {name: _comparable(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value
