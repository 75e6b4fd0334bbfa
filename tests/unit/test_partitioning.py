"""Partition paths: default, time (record timestamp, zone-aware), field (hostile values stay inside the prefix)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.keys import archive_key
from archiver.partitioning import (
    MAX_FIELD_NESTING,
    MAX_SEGMENT_LENGTH,
    NULL_PARTITION,
    build_partitioner,
    encode_segment,
    field_text,
    null_time_path,
)
from archiver.settings import MAX_TIME_PATTERN_LENGTH, Settings

SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_.%~-]+$")
SAFE_PATH = re.compile(r"^[A-Za-z0-9_=-]+(/[A-Za-z0-9_=-]+)*$")


def settings(**overrides: Any) -> Settings:
    return Settings(archive_bucket="my-archive", dead_letter_queue_url="https://sqs.example/q", **overrides)


def envelope(value: bytes | None = None, *, topic: str = "orders", timestamp: int = 0, partition: int = 3) -> Any:
    return {"topic": topic, "partition": partition, "offset": 1, "timestamp": timestamp, "value": value}


def test_default_partitioner_is_topic_and_partition() -> None:
    assert build_partitioner(settings())(envelope()) == "orders/partition=3"


def test_time_partitioner_uses_the_record_timestamp_in_utc() -> None:
    path = build_partitioner(settings(partitioner="time"))
    # 2024-05-01T23:59:59.999Z and one millisecond later
    assert path(envelope(timestamp=1_714_607_999_999)) == "orders/year=2024/month=05/day=01/hour=23"
    assert path(envelope(timestamp=1_714_608_000_000)) == "orders/year=2024/month=05/day=02/hour=00"


def test_time_partitioner_honours_a_configured_zone_and_pattern() -> None:
    path = build_partitioner(settings(partitioner="time", timezone="Asia/Kolkata", time_pattern="dt=%Y-%m-%d/%H%M"))
    # 2024-05-01T23:59:59Z is 05:29 on May 2nd in India (UTC+05:30)
    assert path(envelope(timestamp=1_714_607_999_000)) == "orders/dt=2024-05-02/0529"


def test_time_partitioner_handles_records_without_a_timestamp() -> None:
    # Kafka reports -1 for NO_TIMESTAMP_TYPE; it lands in the last minute of 1969, never at wall-clock time.
    assert build_partitioner(settings(partitioner="time"))(envelope(timestamp=-1)).endswith(
        "year=1969/month=12/day=31/hour=23"
    )


@pytest.mark.parametrize(
    "timestamp",
    [2**62, 1_714_567_890_123_456, -(2**63) + 1, 253_402_300_800_000, -62_135_596_800_001],
    ids=["2^62", "microseconds", "int64-min", "year-10000", "year-0"],
)
def test_timestamps_outside_the_calendar_go_to_the_null_partition(timestamp: int) -> None:
    # The time partitioner used to dead-letter these records while the other partitioners archived them; now every
    # partitioner archives them (envelope v2 keeps the exact value in timestamp_raw), this one in the NULL partition.
    path = build_partitioner(settings(partitioner="time"))(envelope(timestamp=timestamp))
    null = NULL_PARTITION
    assert path == f"orders/year={null}/month={null}/day={null}/hour={null}"


def test_a_timestamp_at_the_end_of_the_calendar_in_utc_can_be_outside_it_in_the_zone() -> None:
    # 9999-12-31T23:59Z is already year 10000 in Berlin: the NULL partition, not an error.
    path = build_partitioner(settings(partitioner="time", timezone="Europe/Berlin", time_pattern="dt=%Y%m%d/%H"))
    assert path(envelope(timestamp=253_402_300_799_999)) == f"orders/dt={NULL_PARTITION}/{NULL_PARTITION}"
    assert path(envelope(timestamp=253_402_293_600_000)) == "orders/dt=99991231/23"  # 22:00Z is 23:00 there


@pytest.mark.parametrize("pattern", ["%Y/%m/%d/%H/%M", "year=%Y/month=%m/day=%d/hour=%H", "%Y" + "-%m" * 21])
def test_the_null_time_path_is_never_longer_than_a_dated_one(pattern: str) -> None:
    path = null_time_path(pattern)
    assert len(path) <= 2 * MAX_TIME_PATTERN_LENGTH
    assert SAFE_PATH.match(path), path


def test_field_partitioner_reads_a_top_level_json_field() -> None:
    path = build_partitioner(settings(partitioner="field", partition_field="country"))
    assert path(envelope(b'{"country": "DE", "nested": {"country": "FR"}}')) == "orders/country=DE"
    assert path(envelope(b'{"country": 49}')) == "orders/country=49"
    assert path(envelope(b'{"country": true}')) == "orders/country=true"
    assert path(envelope(b'{"country": ["a", "b"]}')) == "orders/country=%5B%22a%22%2C%22b%22%5D"


@pytest.mark.parametrize(
    "value",
    [None, b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"{}", b'{"country": null}', b'{"country": ""}'],
    ids=["tombstone", "not-json", "not-utf8", "array", "string", "missing", "null", "empty"],
)
def test_records_without_a_usable_field_go_to_the_null_partition(value: bytes | None) -> None:
    path = build_partitioner(settings(partitioner="field", partition_field="country"))
    assert path(envelope(value)) == f"orders/country={NULL_PARTITION}"


def test_json_nested_deeper_than_the_limit_goes_to_the_null_partition_without_parsing() -> None:
    # 10 KB of "[": json.loads raised RecursionError and the whole batch failed, so the partition stalled.
    path = build_partitioner(settings(partitioner="field", partition_field="country"))
    for value in (b"[" * 10_000, b"[" * 10_000 + b"]" * 10_000, b'{"country": "DE", "x": ' + b"[" * 5_000):
        assert path(envelope(value)) == f"orders/country={NULL_PARTITION}"


def test_json_within_the_nesting_limit_is_read_whatever_its_brackets_in_strings() -> None:
    deep = b'{"country": "DE", "x": ' + b"[" * (MAX_FIELD_NESTING - 1) + b"]" * (MAX_FIELD_NESTING - 1) + b"}"
    assert field_text(deep, "country") == "DE"
    brackets_in_text = json.dumps({"country": "[" * 100_000, "y": "{" * 10}).encode()
    assert field_text(brackets_in_text, "country") == "[" * 100_000
    too_deep = b'{"country": "DE", "x": ' + b"[" * MAX_FIELD_NESTING + b"]" * MAX_FIELD_NESTING + b"}"
    assert field_text(too_deep, "country") == ""


@pytest.mark.parametrize(
    "value",
    [
        b'{"country": ' + b"9" * 5_000 + b"}",  # more digits than Python reads: ValueError, not a crash
        b'{"country": 1e999}',
        '{"country": "\u00b2\ud800"}'.encode("utf-8", "surrogatepass"),
        b'{"country": "' + b"\xc3\xa9" * 1_000_000 + b'"}',
        '{"country": "DE"}'.encode("utf-16"),
    ],
    ids=["many-digits", "inf", "surrogate", "2MB-unicode", "utf-16"],
)
def test_hostile_json_field_values_give_a_safe_bounded_segment(value: bytes) -> None:
    path = build_partitioner(settings(partitioner="field", partition_field="country"))(envelope(value))
    segment = path.removeprefix("orders/country=")
    assert SAFE_SEGMENT.match(segment)
    assert len(segment) <= MAX_SEGMENT_LENGTH


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../x", "..%2Fx"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("/", "%2F"),
        ("a/b", "a%2Fb"),
        ("", NULL_PARTITION),
        ("tab\there\nnul\x00", "tab%09here%0Anul%00"),
        ("ümlaut €", "%C3%BCmlaut%20%E2%82%AC"),
        ("100%", "100%25"),
        ("a=b&c?d#e", "a%3Db%26c%3Fd%23e"),
        ("\ud800", "%ED%A0%80"),  # a lone surrogate, which JSON can carry
    ],
)
def test_hostile_field_values_are_encoded_into_one_safe_segment(hostile: str, expected: str) -> None:
    assert encode_segment(hostile) == expected
    path = build_partitioner(settings(partitioner="field", partition_field="country"))
    document = json.dumps({"country": hostile}).encode()
    assert path(envelope(document)) == f"orders/country={expected}"


def test_long_values_are_cut_and_stay_distinct() -> None:
    first, second = encode_segment("x" * 5000 + "a"), encode_segment("x" * 5000 + "b")
    assert len(first) <= MAX_SEGMENT_LENGTH
    assert first != second
    assert first.startswith("x" * 64 + "~")


def test_cutting_never_splits_an_escape() -> None:
    segment = encode_segment("é" * 100)  # every character is two %XX escapes
    head = segment.split("~")[0]
    assert re.fullmatch(r"(%[0-9A-F]{2})+", head)


def test_hostile_topic_names_are_encoded_too() -> None:
    assert build_partitioner(settings())(envelope(topic="../../etc")) == "..%2F..%2Fetc/partition=3"


@given(value=st.text() | st.binary().map(lambda data: data.decode("utf-8", "surrogateescape")))
def test_any_field_value_gives_one_safe_segment_and_a_valid_key(value: str) -> None:
    segment = encode_segment(value)
    assert SAFE_SEGMENT.match(segment)
    assert segment not in (".", "..")
    assert len(segment) <= MAX_SEGMENT_LENGTH
    prefix = "archive/topics/"
    key = archive_key(prefix, f"orders/country={segment}", "orders", 0, 0)
    assert key.startswith(prefix + "orders/country=")
    assert all(part not in ("", ".", "..") for part in key.split("/"))
    assert len(key.encode()) <= 1024
