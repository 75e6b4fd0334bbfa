"""Envelope schema v1 -> v2 (docs/schema.md): old objects stay readable, every timestamp comes back exactly.

v1 objects are written here as the Lambda wrote them before v2: ``fastavro.writer`` with the v1 schema (kept in
``envelope_v1.avsc``, the file as it shipped), the delivered timestamp in a plain ``timestamp-millis`` field.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, cast

import avro.datafile
import avro.io
import avro.schema
import fastavro
import pytest

from archive_ops import verify
from archive_ops.archive_index import compacted_key, read_envelopes
from archive_ops.avro_blocks import read_container
from archive_ops.compact import CompactionConfig, Compactor
from archiver.decoding import decode_record
from archiver.encoding import ENVELOPE_SCHEMA, encode_records, encode_with_schema, load_envelope_schema
from archiver.writing import object_metadata
from tests.avro_readers import millis, read_apache, read_both, read_fastavro
from tests.ops.archive_builder import varied_record
from tests.unit.aws_fakes import BUCKET, FakeAws

V1_SCHEMA = json.loads((Path(__file__).parent / "envelope_v1.avsc").read_text())
OUT_OF_RANGE = [1_714_567_890_123_456, -(2**63) + 1, 253_402_300_800_000]  # microseconds, int64 min, year 10000
IN_RANGE = [1_714_567_890_123, -1, 0, -62_135_596_800_000, 253_402_300_799_999]


def envelopes(timestamps: list[int], first_offset: int = 0) -> list[dict[str, Any]]:
    records = []
    for offset, timestamp in enumerate(timestamps, start=first_offset):
        record = decode_record(varied_record("orders", 0, offset))
        record["timestamp"] = timestamp
        records.append(record)
    return records


def v1_object(records: list[dict[str, Any]], key: str = "k") -> bytes:
    return encode_with_schema(fastavro.parse_schema(V1_SCHEMA), records, codec="zstandard", key=key)


def test_v2_is_a_compatible_evolution_of_v1() -> None:
    # Same full name; the new field has a default; the timestamp's type widens to a union with null.
    assert (V1_SCHEMA["namespace"], V1_SCHEMA["name"]) == (
        load_envelope_schema()["namespace"],
        load_envelope_schema()["name"],
    )
    body = v1_object(envelopes(IN_RANGE))
    resolved = [cast("dict[str, Any]", r) for r in fastavro.reader(io.BytesIO(body), reader_schema=ENVELOPE_SCHEMA)]
    assert [record["timestamp_raw"] for record in resolved] == [None] * len(IN_RANGE)
    v2 = avro.schema.parse(json.dumps(load_envelope_schema()))
    with avro.datafile.DataFileReader(io.BytesIO(body), avro.io.DatumReader(readers_schema=v2)) as apache:
        records = [cast("dict[str, Any]", record) for record in apache]
    assert [(millis(r["timestamp"]), r["timestamp_raw"]) for r in records] == [(s, None) for s in IN_RANGE]
    assert [r["offset"] for r in read_both(body)] == list(range(len(IN_RANGE)))


def test_a_v1_object_with_timestamps_no_reader_can_convert_is_read_exactly_by_the_tools() -> None:
    timestamps = IN_RANGE + OUT_OF_RANGE
    body = v1_object(envelopes(timestamps))
    with pytest.raises(OverflowError):  # what v1 left behind: default readers fail on the object
        read_fastavro(body)
    with pytest.raises(OverflowError):
        read_apache(body)
    assert [record["timestamp"] for record in read_envelopes(body)] == timestamps


def test_v2_objects_read_back_exactly_and_without_timestamp_raw() -> None:
    timestamps = IN_RANGE + OUT_OF_RANGE
    records = envelopes(timestamps)
    back = list(read_envelopes(encode_records(records, codec="zstandard", key="k")))
    assert [record["timestamp"] for record in back] == timestamps
    assert all("timestamp_raw" not in record for record in back)
    assert back == records


def test_compaction_rewrites_v1_objects_as_v2_that_every_reader_reads(aws: FakeAws) -> None:
    timestamps = [IN_RANGE + OUT_OF_RANGE, IN_RANGE[:2], OUT_OF_RANGE[:1]]
    first = 0
    expected: list[int] = []
    for batch in timestamps:
        records = envelopes(batch, first)
        last = first + len(batch) - 1
        key = compacted_key(("topics/orders/partition=0", "orders", 0, None), first, last)
        aws.s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=v1_object(records, key),
            Metadata=object_metadata(0, first, last, len(batch), "zstandard"),
        )
        expected += batch
        first = last + 1

    report = Compactor(aws.s3, CompactionConfig(bucket=BUCKET, method="copy")).run()

    (merge,) = report.merges
    assert merge.method == "reencode"
    assert "v1 -> v2" in str(merge.fallback_reason)
    (key,) = aws.keys()
    body = aws.body(key)
    assert [(r["timestamp"], r["timestamp_raw"]) for r in read_both(body)][len(IN_RANGE) :][:3] == [
        (None, stamp) for stamp in OUT_OF_RANGE
    ]
    assert [record["timestamp"] for record in read_envelopes(body)] == expected
    assert b"timestamp_raw" in dict(read_container(body).metadata)["avro.schema"]


def test_v1_and_v2_objects_of_one_partition_compact_into_one_v2_object(aws: FakeAws) -> None:
    # Before, compaction did not recognise fastavro-written headers (full name, no namespace) as envelopes and
    # refused to merge objects of the two versions ("different writer schemas").
    v1_records, v2_records = envelopes(IN_RANGE + OUT_OF_RANGE), envelopes(OUT_OF_RANGE + IN_RANGE, 8)
    for records, encode in ((v1_records, v1_object), (v2_records, None)):
        first, last = records[0]["offset"], records[-1]["offset"]
        key = compacted_key(("topics/orders/partition=0", "orders", 0, None), first, last)
        body = v1_object(records, key) if encode else encode_records(records, codec="zstandard", key=key)
        metadata = object_metadata(0, first, last, len(records), "zstandard")
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)

    (merge,) = Compactor(aws.s3, CompactionConfig(bucket=BUCKET)).run().merges

    assert merge.method == "reencode"
    (key,) = aws.keys()
    assert [r["timestamp"] for r in read_envelopes(aws.body(key))] == IN_RANGE + OUT_OF_RANGE + OUT_OF_RANGE + IN_RANGE
    assert len(read_both(aws.body(key))) == 16


def test_verify_reads_a_v1_object_that_default_readers_cannot(aws: FakeAws) -> None:
    records = envelopes(IN_RANGE + OUT_OF_RANGE)
    key = compacted_key(("topics/orders/partition=0", "orders", 0, None), 0, len(records) - 1)
    body = v1_object(records, key)
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=object_metadata(0, 0, 7, 8, "zstandard"))

    result = verify.audit(s3=aws.s3, bucket=BUCKET)

    assert result["complete"]
    assert [(p["archived"], p["archivedRecords"]) for p in result["partitions"]] == [([[0, 7]], 8)]
