"""Show archived records of one topic-partition, in offset order, as JSON lines or a table.

    kafka-s3-archiver cat --bucket B --topic orders --partition 3 --from-offset 1200 --to-offset 1210
    kafka-s3-archiver cat --config config/prod.json --topic orders --partition 3 --since 2024-05-01T13:00 --output table

Bytes are shown exactly and safely:

* ``--output jsonl`` (default): one JSON object per record; ``key``, ``value`` and header values are base64 (the
  exact bytes, whatever they hold; ``null`` when absent: a null value is a tombstone); ``timestamp`` in epoch
  milliseconds, as archived.
* ``--output table``: one line per record; key, value and header values as text where they are printable UTF-8,
  everything else escaped (``\\n``, ``\\t``, ``\\\\``, ``\\xNN`` for other bytes), long values cut with ``...``;
  nothing written can move the cursor or change the terminal.

Records come from the archive only (never Kafka), through the same reader as replay: each offset once, across every
partition path of the partition.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

TABLE_VALUE_WIDTH = 80


def jsonl(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(
            {
                "topic": record["topic"],
                "partition": record["partition"],
                "offset": record["offset"],
                "timestamp": record["timestamp"],
                "timestampType": record.get("timestamp_type"),
                "key": _b64(record.get("key")),
                "value": _b64(record.get("value")),
                "headers": [{"key": h["key"], "value": _b64(h.get("value"))} for h in record.get("headers") or []],
            },
            separators=(",", ":"),
        )


def table(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield f"{'offset':>12}  {'timestamp (UTC)':<24}  {'key':<24}  value [headers]"
    for record in records:
        headers = ", ".join(f"{escape(h['key'].encode())}={show(h.get('value'), 24)}" for h in record["headers"])
        value = "(tombstone)" if record.get("value") is None else show(record["value"], TABLE_VALUE_WIDTH)
        yield (
            f"{record['offset']:>12}  {_when(record['timestamp']):<24}  {show(record.get('key'), 24):<24}  {value}"
            + (f"  [{headers}]" if headers else "")
        )


def show(data: bytes | None, width: int) -> str:
    if data is None:
        return "-"
    text = escape(data)
    return text if len(text) <= width else text[: width - 3] + "..."


def escape(data: bytes) -> str:
    """Printable UTF-8 as is; backslashes, control characters and undecodable bytes escaped (``\\xNN``)."""
    return "".join(_escape_char(char) for char in data.decode("utf-8", "surrogateescape"))


def _escape_char(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    return char.encode("unicode_escape").decode("ascii")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _when(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    except (ValueError, OverflowError, OSError):
        return str(timestamp)
