"""Object keys and Avro encoding: deterministic, ordered, every field read back with fastavro."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from archiver.decoding import decode_event
from archiver.encoding import (
    TIMESTAMP_MILLIS_MAX,
    TIMESTAMP_MILLIS_MIN,
    decode_long,
    encode_long,
    encode_records,
    fastavro_encode_records,
    load_envelope_schema,
    sync_marker_for,
)
from archiver.errors import ObjectKeyError
from archiver.keys import archive_key, archive_name, dead_letter_key, dead_letter_ledger_key
from archiver.settings import CODECS
from tests.avro_readers import millis, read_both
from tests.kafka_events import kafka_event, kafka_record


def test_archive_key_names_the_first_offset_zero_padded_for_lexical_offset_order() -> None:
    key = archive_key("topics/", "orders/partition=3", "orders", 3, 7)
    assert key == "topics/orders/partition=3/orders+3+00000000000000000007.avro"
    keys = [archive_key("", "t/partition=0", "t", 0, first) for first in (5, 10, 100, 99, 1000)]
    assert sorted(keys) == [keys[0], keys[1], keys[3], keys[2], keys[4]]


def test_compacted_names_carry_the_last_offset_and_typed_ones_the_fingerprint_last() -> None:
    assert archive_name("t", 0, 5, 9) == "t+0+00000000000000000005+00000000000000000009.avro"
    assert archive_name("t", 0, 5, None, "0123456789abcdef") == "t+0+00000000000000000005+0123456789abcdef.avro"
    assert archive_name("t", 0, 5, 9, "0123456789abcdef").endswith("+00000000000000000009+0123456789abcdef.avro")


def test_archive_key_encodes_a_hostile_topic_in_the_file_name() -> None:
    key = archive_key("", "..%2Fx/partition=0", "../x", 0, 1)
    assert key == "..%2Fx/partition=0/..%2Fx+0+00000000000000000001.avro"


def test_keys_longer_than_s3_allows_raise() -> None:
    with pytest.raises(ObjectKeyError, match="1024-byte"):
        archive_key("p/" * 400, "t/partition=0", "t" * 249, 0, 0)


def test_dead_letter_ledger_keys_name_the_dead_lettered_range() -> None:
    assert dead_letter_ledger_key("a/b", 2, 7, 9) == (
        "dead-letter/a%2Fb/partition=2/ledger/00000000000000000007-00000000000000000009.json"
    )


def test_dead_letter_keys_live_under_the_reserved_prefix() -> None:
    assert dead_letter_key("a/b", 2, "id") == "dead-letter/a%2Fb/partition=2/id.json"
    assert dead_letter_key("t", None, "id") == "dead-letter/t/partition=unknown/id.json"


def test_the_shipped_schema_has_every_envelope_field() -> None:
    schema = load_envelope_schema()
    names = [field["name"] for field in schema["fields"]]
    assert names == [
        "topic", "partition", "offset", "timestamp", "timestamp_raw", "timestamp_type", "key", "value", "headers"
    ]  # fmt: skip
    # Envelope schema v2 (docs/schema.md): same record name and namespace as v1, so v1 objects read with it.
    assert (schema["namespace"], schema["name"]) == ("kafka_s3_archiver.envelope.v1", "KafkaRecord")
    assert schema["fields"][3]["type"] == ["null", {"type": "long", "logicalType": "timestamp-millis"}]
    assert schema["fields"][4] | {"doc": ""} == {
        "name": "timestamp_raw",
        "type": ["null", "long"],
        "default": None,
        "doc": "",
    }


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_field_by_field_for_every_codec(codec: str) -> None:
    records = [
        kafka_record("orders", 0, 10, headers=[("trace", b"abc"), ("trace", b"\x00\xff")]),
        kafka_record("orders", 0, 11, value=None),  # tombstone
        kafka_record("orders", 0, 12, key=None, value=b"\x00binary\xff" * 50),
    ]
    decoded = decode_event(kafka_event(records)).records
    body = encode_records(decoded, codec=codec, key="k")

    reader = fastavro.reader(io.BytesIO(body))
    assert reader.codec == codec
    assert reader.metadata["avro.codec"] == codec
    read: list[Any] = list(reader)
    assert [r["offset"] for r in read] == [10, 11, 12]
    for original, back in zip(decoded, read, strict=True):
        assert back["topic"] == original["topic"]
        assert back["partition"] == original["partition"]
        assert back["timestamp"] == datetime.fromtimestamp(original["timestamp"] / 1000, UTC)
        assert back["timestamp_raw"] is None
        assert back["timestamp_type"] == "CREATE_TIME"
        assert back["key"] == original["key"]
        assert back["value"] == original["value"]
        assert back["headers"] == original["headers"]
    assert read[1]["value"] is None
    assert read[2]["key"] is None


def test_same_records_and_key_give_byte_identical_objects() -> None:
    records = decode_event(kafka_event([kafka_record("t", 0, n) for n in range(50)])).records
    first = encode_records(records, codec="zstandard", key="a/key.avro")
    again = encode_records(records, codec="zstandard", key="a/key.avro")
    other = encode_records(records, codec="zstandard", key="another/key.avro")
    assert first == again
    assert first != other
    assert sync_marker_for("a/key.avro") in first


@pytest.mark.parametrize("codec", CODECS)
def test_the_envelope_writer_is_byte_identical_to_fastavro_writer(codec: str) -> None:
    # encode_records is a hand-written writer for the envelope schema (see encoding.py for the measured reason);
    # fastavro's general writer, given the same sync marker, is the reference it must match byte for byte.
    records = decode_event(
        kafka_event(
            [kafka_record("t", 0, n, headers=[("h", bytes([n % 256]))] * (n % 3)) for n in range(3000)]
            + [kafka_record("t", 0, 3000, value=None, key=None), kafka_record("t", 0, 3001, value=b"x" * 2_000_000)]
            + [
                kafka_record("t", 0, 2**62, timestamp=-1),
                kafka_record("t\u00e9", 2**31 - 1, 2**63 - 1, timestamp=-(2**40)),
            ]
            + [kafka_record("t", 1, n, timestamp=stamp) for n, stamp in enumerate(EDGE_TIMESTAMPS)]
        )
    ).records
    assert encode_records(records, codec=codec, key="k.avro") == fastavro_encode_records(
        records, codec=codec, key="k.avro"
    )


def test_objects_are_the_same_bytes_whatever_the_hash_seed() -> None:
    """fastavro orders a field's optional schema properties by a set's iteration order, which depends on the hash
    seed: two Lambda containers must still write the same bytes for the same records and key."""
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, 'functions/archiver');"
        "from archiver.encoding import encode_records;"
        "r = [{'topic': 't', 'partition': 0, 'offset': 1, 'timestamp': 5, 'timestamp_type': 'CREATE_TIME',"
        " 'key': None, 'value': b'v', 'headers': []}];"
        "sys.stdout.buffer.write(encode_records(r, codec='null', key='k'))"
    )
    bodies = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, check=True, env={"PYTHONHASHSEED": str(seed)}
        ).stdout
        for seed in range(6)
    }
    assert len(bodies) == 1


# At and beyond both ends of timestamp-millis' readable range, the extremes of int64, and microseconds sent as ms.
EDGE_TIMESTAMPS = [
    TIMESTAMP_MILLIS_MIN, TIMESTAMP_MILLIS_MIN - 1, TIMESTAMP_MILLIS_MAX, TIMESTAMP_MILLIS_MAX + 1,
    -(2**63) + 1, 2**63 - 1, 1_714_567_890_123_456, -1, 0,
]  # fmt: skip


@pytest.mark.parametrize("codec", CODECS)
def test_every_timestamp_is_readable_by_default_readers_and_exact(codec: str) -> None:
    # Envelope schema v1 wrote 1714567890123456 (microseconds) as timestamp-millis: fastavro and Apache avro both
    # raised OverflowError on the object, and every later record in it was unreachable to them.
    records = decode_event(kafka_event([kafka_record("t", 0, n, timestamp=s) for n, s in enumerate(EDGE_TIMESTAMPS)]))
    body = encode_records(records.records, codec=codec, key="k")

    read = read_both(body)
    for stamp, back in zip(EDGE_TIMESTAMPS, read, strict=True):
        if TIMESTAMP_MILLIS_MIN <= stamp <= TIMESTAMP_MILLIS_MAX:
            assert (millis(back["timestamp"]), back["timestamp_raw"]) == (stamp, None)
        else:
            assert (back["timestamp"], back["timestamp_raw"]) == (None, stamp)


def test_records_at_the_edges_are_readable_by_both_readers() -> None:
    records = [
        kafka_record("t", 0, 0, key=b"", value=b""),
        kafka_record("t", 0, 1, key=b"k" * 3_000_000, value=b"\x00" * 5_000_000),
        kafka_record("t", 0, 2, headers=[(f"h\u00e9\u4e2d\U0001f600{n}", bytes([n % 256]) * n) for n in range(2_000)]),
        kafka_record("\u00fcml\u00e4ut-\U0001f600", 2**31 - 1, 2**63 - 1, key=None, value=None, timestamp=0),
    ]
    records[0]["headers"] = [{"": []}, {"null": None}]
    decoded = decode_event(kafka_event(records)).records
    assert len(decoded) == 4
    read = read_both(encode_records(decoded, codec="zstandard", key="k"))
    for original, back in zip(decoded, read, strict=True):
        assert {name: back[name] for name in ("topic", "partition", "offset", "key", "value", "headers")} == {
            name: original[name] for name in ("topic", "partition", "offset", "key", "value", "headers")
        }


def test_decode_long_reads_what_encode_long_writes_and_refuses_broken_varints() -> None:
    numbers = [0, -1, 1, 63, -64, 64, 2**31, -(2**63), 2**63 - 1]
    data = b"".join(encode_long(n) for n in numbers)
    position, back = 0, []
    while position < len(data):
        value, position = decode_long(data, position)
        back.append(value)
    assert back == numbers
    with pytest.raises(ValueError, match="truncated"):
        decode_long(b"\x80", 0)
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        decode_long(b"\xff" * 11, 0)
