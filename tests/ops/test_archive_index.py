"""Archive keys, overlap classification and container blocks, without S3."""

from __future__ import annotations

import io

import fastavro
import pytest

from archiver.decoding import decode_record
from archiver.encoding import encode_records, sync_marker_for
from archiver.keys import archive_key
from tests.ops.archive_builder import varied_record
from tools.archive_index import ObjectOffsets, classify_overlaps, make_key, parse_key
from tools.avro_blocks import AvroContainerError, encode_long, read_container, write_container

DIR = "topics/orders/partition=0"


def key(first: int, last: int, directory: str = DIR, partition: int = 0) -> str:
    return make_key((directory, "orders", partition, None), first, last)


def test_make_key_is_the_lambdas_key_scheme() -> None:
    assert make_key(("topics/a%2Bb/partition=3", "a%2Bb", 3, None), 5, 7) == archive_key(
        "topics/", "a%2Bb/partition=3", "a+b", 3, 5, 7
    )
    typed = make_key(("topics/a/partition=3", "a", 3, "0123abcd"), 5, 7)
    assert typed == "topics/a/partition=3/a+3+00000000000000000005+00000000000000000007+0123abcd.avro"
    ref = parse_key(typed)
    assert ref is not None
    assert ref.group == ("topics/a/partition=3", "a", 3, "0123abcd")


def test_parse_key_reads_the_coordinates_back() -> None:
    ref = parse_key(archive_key("topics/", "we%2Bird/country=DE", "we+ird", 3, 5, 1234))
    assert ref is not None
    assert (ref.directory, ref.topic_segment, ref.partition, ref.first_offset, ref.last_offset) == (
        "topics/we%2Bird/country=DE",
        "we%2Bird",
        3,
        5,
        1234,
    )
    assert ref.path("topics/") == "we%2Bird/country=DE"


@pytest.mark.parametrize(
    "stray",
    [
        "dead-letter/orders/partition=0/abc.json",
        "dead-letter/orders/partition=0/orders+0+00000000000000000001+00000000000000000002.avro",
        "topics/orders/partition=0/orders+0+1+2.avro",  # not zero-padded
        "topics/orders/partition=0/orders+0+00000000000000000009+00000000000000000002.avro",  # first > last
        "topics/orders/partition=0/other+0+00000000000000000001+00000000000000000002.avro",  # topic not in path
        "orders+0+00000000000000000001+00000000000000000002.avro",  # no directory
        "topics/orders/partition=0/notes.txt",
    ],
)
def test_parse_key_ignores_what_is_not_an_archive_object(stray: str) -> None:
    assert parse_key(stray) is None


def test_a_strict_subset_of_a_compacted_object_is_a_pending_compaction() -> None:
    report = classify_overlaps(
        [
            ObjectOffsets(key(0, 9), range(10), compacted_from=2),
            ObjectOffsets(key(0, 4), range(5)),
            ObjectOffsets(key(5, 9), range(5, 10)),
            ObjectOffsets(key(10, 14), range(10, 15)),
        ]
    )
    assert [(p.key, p.covered_by) for p in report.pending] == [(key(0, 4), key(0, 9)), (key(5, 9), key(0, 9))]
    assert report.duplicates == []
    assert report.clean


def test_a_subset_of_an_object_the_lambda_wrote_is_a_real_duplicate() -> None:
    # A retry with wider batch boundaries leaves exactly this shape; nothing says one copy is meant to go.
    report = classify_overlaps([ObjectOffsets(key(0, 9), range(10)), ObjectOffsets(key(0, 4), range(5))])
    assert report.pending == []
    assert [(d.keys, d.shared_offsets, d.first_shared, d.last_shared) for d in report.duplicates] == [
        ((key(0, 4), key(0, 9)), 5, 0, 4)
    ]
    assert not report.clean


def test_partial_overlaps_are_duplicates_even_between_compacted_objects() -> None:
    report = classify_overlaps(
        [ObjectOffsets(key(0, 5), range(6), compacted_from=2), ObjectOffsets(key(3, 9), range(3, 10), compacted_from=3)]
    )
    assert report.pending == []
    assert [(d.shared_offsets, d.first_shared, d.last_shared) for d in report.duplicates] == [(3, 3, 5)]


def test_interleaved_ranges_with_disjoint_offsets_do_not_overlap() -> None:
    # Field partitioning: ranges intersect, offsets do not; only contents can tell.
    report = classify_overlaps([ObjectOffsets(key(0, 8), [0, 4, 8]), ObjectOffsets(key(2, 6), [2, 6])])
    assert report.pending == []
    assert report.duplicates == []


def test_the_same_offsets_in_other_groups_are_not_overlaps() -> None:
    report = classify_overlaps(
        [
            ObjectOffsets(key(0, 9), range(10)),
            ObjectOffsets(key(0, 9, partition=1, directory="topics/orders/partition=1"), range(10)),
            ObjectOffsets(key(0, 9, directory="topics/orders/country=DE"), range(10)),
            ObjectOffsets("dead-letter/orders/partition=0/x.json", range(10)),
        ]
    )
    assert report.pending == []
    assert report.duplicates == []


def test_a_pending_object_is_reported_once_against_its_largest_coverer() -> None:
    report = classify_overlaps(
        [
            ObjectOffsets(key(0, 4), range(5)),
            ObjectOffsets(key(0, 9), range(10), compacted_from=2),
            ObjectOffsets(key(0, 19), range(20), compacted_from=2),
            ObjectOffsets(key(3, 24), range(3, 25)),  # a real duplicate of the big one, and of the leftovers
        ]
    )
    assert [(p.key, p.covered_by) for p in report.pending] == [(key(0, 4), key(0, 19)), (key(0, 9), key(0, 19))]
    assert [d.keys for d in report.duplicates] == [(key(0, 19), key(3, 24))]


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
