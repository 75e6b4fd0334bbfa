"""Archive keys, overlap classification and container blocks, without S3."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fastavro
import pytest

from archive_ops.archive_index import (
    compacted_key,
    find_copies,
    parse_key,
    read_envelopes,
    record_digest,
    record_digests,
)
from archive_ops.avro_blocks import AvroContainerError, encode_long, read_container, write_container
from archiver.decoding import decode_record
from archiver.encoding import encode_records, sync_marker_for
from archiver.keys import archive_key
from tests.ops.archive_builder import varied_record

DIR = "topics/orders/partition=0"
FINGERPRINT = "0123456789abcdef"


def test_compacted_keys_name_the_range_in_the_functions_key_scheme() -> None:
    assert compacted_key(("topics/a%2Bb/partition=3", "a%2Bb", 3, None), 5, 7) == (
        "topics/a%2Bb/partition=3/a%2Bb+3+00000000000000000005+00000000000000000007.avro"
    )
    typed = compacted_key(("topics/a/partition=3", "a", 3, FINGERPRINT), 5, 7)
    assert typed == f"topics/a/partition=3/a+3+00000000000000000005+00000000000000000007+{FINGERPRINT}.avro"
    ref = parse_key(typed)
    assert ref is not None
    assert ref.group == ("topics/a/partition=3", "a", 3, FINGERPRINT)
    assert (ref.first_offset, ref.last_offset) == (5, 7)


@pytest.mark.parametrize(
    ("key", "coordinates"),
    [
        # as the function names them: first offset only, raw and typed
        (archive_key("topics/", "we%2Bird/country=DE", "we+ird", 3, 5), (5, None, None)),
        (archive_key("topics/", "orders/partition=0", "orders", 0, 5, FINGERPRINT), (5, None, FINGERPRINT)),
        # as compaction (and archiver 0.1) names them: first and last offset
        (f"{DIR}/orders+0+00000000000000000005+00000000000000001234.avro", (5, 1234, None)),
        (f"{DIR}/orders+0+00000000000000000005+00000000000000001234+{FINGERPRINT}.avro", (5, 1234, FINGERPRINT)),
    ],
)
def test_parse_key_reads_the_coordinates_back(key: str, coordinates: tuple[int, int | None, str | None]) -> None:
    ref = parse_key(key)
    assert ref is not None
    assert (ref.first_offset, ref.last_offset, ref.fingerprint) == coordinates
    assert ref.directory == key.rpartition("/")[0]
    assert ref.upper_bound == (coordinates[1] if coordinates[1] is not None else 2**63 - 1)


@pytest.mark.parametrize(
    "stray",
    [
        "dead-letter/orders/partition=0/abc.json",
        "dead-letter/orders/partition=0/orders+0+00000000000000000001+00000000000000000002.avro",
        "topics/orders/partition=0/orders+0+1+2.avro",  # not zero-padded
        "topics/orders/partition=0/orders+0+00000000000000000009+00000000000000000002.avro",  # first > last
        "topics/orders/partition=0/other+0+00000000000000000001.avro",  # topic not in path
        "topics/orders/partition=0/orders+0+00000000000000000001+0123.avro",  # not a fingerprint
        "topics/orders/partition=0/orders+0+00000000000000000001+00000000000000000002+x+y.avro",
        "orders+0+00000000000000000001.avro",  # no directory
        "topics/orders/partition=0/notes.txt",
    ],
)
def test_parse_key_ignores_what_is_not_an_archive_object(stray: str) -> None:
    assert parse_key(stray) is None


def test_identical_copies_are_duplicates_and_different_ones_conflicts() -> None:
    same = {0: b"a", 1: b"b", 2: b"c"}
    copies = find_copies({"x": same, "y": {1: b"b", 2: b"C", 3: b"d"}, "z": {9: b"z"}})
    assert copies.duplicates == {1: ["x", "y"]}
    assert copies.conflicts == {2: ["x", "y"]}
    assert find_copies({"x": same, "y": {5: b"e"}}).duplicates == {}


def test_a_record_digest_covers_every_field_and_ignores_how_the_timestamp_is_stored() -> None:
    record = decode_record(varied_record("orders", 0, 7))
    body = encode_records([record], codec="null", key="k")
    (read_back,) = read_envelopes(body)
    assert record_digest(read_back) == record_digest(record)
    as_datetime = dict(record, timestamp=datetime(2024, 5, 1, 12, 51, 37, 123000, tzinfo=UTC))
    assert record_digest(as_datetime) == record_digest(dict(record, timestamp=1714567897123))
    # envelope v2 keeps an out-of-range timestamp in timestamp_raw: that is the value compared
    assert record_digest(dict(record, timestamp=None, timestamp_raw=99)) == record_digest(dict(record, timestamp=99))
    for name, other in (("value", b"x"), ("key", None), ("headers", []), ("timestamp_type", "LOG_APPEND_TIME")):
        assert record_digest(dict(record, **{name: other})) != record_digest(record), name
    assert record_digests(body) == {7: record_digest(record)}


# -- container blocks -------------------------------------------------------------------------------------------------


def envelopes(first: int, last: int) -> list[dict[str, object]]:
    return [decode_record(varied_record("orders", 0, offset)) for offset in range(first, last + 1)]


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy", "zstandard"])
def test_reading_and_rewriting_a_container_gives_the_same_bytes(codec: str) -> None:
    body = encode_records(envelopes(0, 20), codec=codec, key="k")
    container = read_container(body)
    assert container.codec == codec
    assert container.record_count == 21
    assert container.sync == sync_marker_for("k")
    assert write_container(container.metadata, container.sync, container.blocks) == body


def test_copied_blocks_under_a_new_sync_marker_read_as_the_concatenation() -> None:
    first = read_container(encode_records(envelopes(0, 9), codec="zstandard", key="a"))
    second = read_container(encode_records(envelopes(10, 19), codec="zstandard", key="b"))
    merged = write_container(first.metadata, sync_marker_for("c"), first.blocks + second.blocks)
    records = list(fastavro.reader(io.BytesIO(merged)))
    assert [record["offset"] for record in records] == list(range(20))  # type: ignore[index,call-overload]


def test_a_wrong_sync_marker_or_truncation_is_detected() -> None:
    body = encode_records(envelopes(0, 9), codec="null", key="k")
    with pytest.raises(AvroContainerError, match="sync marker"):
        read_container(body[:-16] + b"x" * 16)
    with pytest.raises(AvroContainerError, match="truncated"):
        read_container(body[:-5])
    with pytest.raises(AvroContainerError, match="magic"):
        read_container(b"PK\x03\x04" + body[4:])


def test_zigzag_longs() -> None:
    assert [encode_long(n) for n in (0, -1, 1, -64, 64, 2**63 - 1)] == [
        b"\x00",
        b"\x01",
        b"\x02",
        b"\x7f",
        b"\x80\x01",
        b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    ]
