"""Composed layouts (archiver.layout + archiver.partitioning): each segment kind, composition, the presets that keep
earlier keys byte for byte, and the settings that declare them, with errors that name the field."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive_ops.archive_index import parse_key
from archiver.errors import PartitionValueError, SettingsError
from archiver.jsontext import load_json
from archiver.keys import archive_key
from archiver.layout import (
    FieldSegment,
    HeaderSegment,
    KeySegment,
    LayoutError,
    PartitionSegment,
    Segment,
    TimeSegment,
    layout_problems,
    parse_segments,
    segments_json,
)
from archiver.partitioning import (
    MAX_FIELD_NESTING,
    MAX_SEGMENT_LENGTH,
    NULL_PARTITION,
    build_partitioner,
    compose,
    encode_segment,
    encode_topic,
    key_bucket,
    longest_path,
    null_time_path,
)
from archiver.settings import Settings
from archiver.values.base import TYPED_VALUE

SAFE_PATH_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.%~=/")
NULL = NULL_PARTITION


def new_settings(**overrides: Any) -> Settings:
    return Settings(archive_bucket="my-archive", dead_letter_queue_url="https://sqs.example/q", **overrides)


def record(
    value: bytes | None = None,
    *,
    topic: str = "orders",
    partition: int = 3,
    timestamp: int = 0,
    key: bytes | None = None,
    headers: list[tuple[str, bytes | None]] = (),  # type: ignore[assignment]
    typed: Any = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": 42,
        "timestamp": timestamp,
        "value": value,
        "key": key,
        "headers": [{"key": name, "value": data} for name, data in headers],
    }
    if typed is not None:
        found[TYPED_VALUE] = typed
    return found


def path_of(segments: list[Segment], item: dict[str, Any], **kwargs: Any) -> str:
    return compose(segments, **kwargs)(item)


def assert_safe(path: str, topic: str = "orders") -> None:
    assert set(path) <= SAFE_PATH_CHARACTERS, path
    parts = path.split("/")
    assert parts[0] == encode_topic(topic)
    assert all(part not in ("", ".", "..") for part in parts), path


# --------------------------------------------------------------------------------------------- the presets


def old_path(partitioner: str, item: dict[str, Any], *, pattern: str, zone: str, field: str) -> str:
    """The three partitioners as they were before layouts (git history of archiver/partitioning.py), as an oracle."""
    topic = encode_topic(item["topic"])
    if partitioner == "default":
        return f"{topic}/partition={item['partition']}"
    if partitioner == "time":
        try:
            formatted = datetime.fromtimestamp(item["timestamp"] // 60_000 * 60, ZoneInfo(zone)).strftime(pattern)
        except (OverflowError, OSError, ValueError):
            formatted = null_time_path(pattern)
        return f"{topic}/{formatted}"
    text = ""
    if item["value"] is not None:
        try:
            document = load_json(item["value"], max_nesting=MAX_FIELD_NESTING)
        except ValueError:
            document = None
        found = document.get(field) if isinstance(document, dict) else None
        if isinstance(found, str):
            text = found
        elif found is not None:
            text = json.dumps(found, separators=(",", ":"), sort_keys=True)
    return f"{topic}/{field}={encode_segment(text)}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
values = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.dictionaries(st.sampled_from(["country", "x", "Country"]), json_values, max_size=3).map(
        lambda d: json.dumps(d).encode()
    ),
)
records = st.builds(
    record,
    values,
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(0, 2**31 - 1),
    timestamp=st.integers(-(2**63) + 1, 2**63 - 1) | st.integers(0, 4_102_444_800_000),
)


@settings(max_examples=300)
@given(
    item=records,
    partitioner=st.sampled_from(["default", "time", "field"]),
    pattern=st.sampled_from(["year=%Y/month=%m/day=%d/hour=%H", "dt=%Y-%m-%d/%H%M", "%Y/%m"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"]),
)
def test_the_named_partitioners_write_the_paths_they_always_wrote(
    item: dict[str, Any], partitioner: str, pattern: str, zone: str
) -> None:
    env = {
        "ARCHIVE_BUCKET": "my-archive",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.example/q",
        "PARTITIONER": partitioner,
        "TIME_PARTITION_PATTERN": pattern,
        "TIME_PARTITION_TIMEZONE": zone,
    }
    if partitioner == "field":
        env["PARTITION_FIELD"] = "country"
    path = build_partitioner(Settings.from_env(env))(item)
    assert path == old_path(partitioner, item, pattern=pattern, zone=zone, field="country")


@settings(max_examples=200)
@given(item=records, zone=st.sampled_from(["UTC", "Asia/Kolkata"]))
def test_a_preset_and_its_segments_give_the_same_path(item: dict[str, Any], zone: str) -> None:
    for preset, segments in (
        ({"partitioner": "default"}, [{"kind": "partition"}]),
        ({"partitioner": "time", "timezone": zone}, [{"kind": "time", "timezone": zone}]),
        ({"partitioner": "field", "partition_field": "country"}, [{"kind": "field", "field": "country"}]),
    ):
        composed = new_settings(partitioner="segments", partition_segments=json.dumps(segments))
        assert build_partitioner(new_settings(**preset))(item) == build_partitioner(composed)(item)


def test_the_presets_are_their_segments() -> None:
    assert new_settings().segments == (PartitionSegment(),)
    assert new_settings(partitioner="time", timezone="Europe/Berlin", time_pattern="%Y").segments == (
        TimeSegment(pattern="%Y", timezone="Europe/Berlin"),
    )
    assert new_settings(partitioner="field", partition_field="a.b").segments == (FieldSegment(field="a.b"),)


# --------------------------------------------------------------------------------------------- field


@given(
    path=st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=4),
    leaf=st.text(min_size=1, max_size=40) | st.integers() | st.booleans(),
    noise=st.dictionaries(st.text(max_size=4), json_values, max_size=2),
)
def test_a_field_segment_reads_a_nested_json_path(path: list[str], leaf: Any, noise: dict[str, Any]) -> None:
    document: Any = leaf
    for name in reversed(path):
        document = {**noise, name: document}
    found = path_of([FieldSegment(field=".".join(path), name="f")], record(json.dumps(document).encode()))
    assert_safe(found)
    segment = found.split("/")[1].removeprefix("f=")
    expected = leaf if isinstance(leaf, str) else json.dumps(leaf)
    if len(encode_segment(expected)) <= MAX_SEGMENT_LENGTH and "~" not in segment:
        assert unquote_to_bytes(segment).decode("utf-8", "surrogatepass") == expected  # reversible when not cut
    assert len(segment) <= MAX_SEGMENT_LENGTH


@pytest.mark.parametrize(
    "value",
    [None, b"{}", b'{"customer": null}', b'{"customer": "DE"}', b'{"customer": {}}', b"[1]", b"\xff", b"[" * 5000],
    ids=["tombstone", "no-field", "null-parent", "parent-not-object", "no-leaf", "array", "not-json", "too-deep"],
)
def test_a_nested_field_that_is_not_there_is_the_null_partition(value: bytes | None) -> None:
    assert path_of([FieldSegment(field="customer.country")], record(value)) == f"orders/customer.country={NULL}"


def test_avro_topics_read_fields_from_their_decoded_value() -> None:
    typed = {
        "customer": {"country": "FR", "since": date(2020, 1, 2)},
        "at": datetime(2026, 11, 29, 10, tzinfo=UTC),
        "raw": b"\x00/..",
        "amount": Decimal("12.50"),
    }
    item = record(b"\x00\x00\x00\x00\x01avro-bytes", typed=typed)
    segments: list[Segment] = [
        FieldSegment(field="customer.country", name="country"),
        FieldSegment(field="customer.since", name="since"),
        FieldSegment(field="raw"),
        FieldSegment(field="amount"),
        TimeSegment(field="at", pattern="dt=%Y-%m-%d"),
    ]
    assert path_of(segments, item, avro_topics=frozenset({"orders"})) == (
        "orders/country=FR/since=2020-01-02/raw=%00%2F../amount=%2212.50%22/dt=2026-11-29"
    )
    # A raw or json topic's field comes from the bytes, which are not JSON here: the NULL partition.
    assert path_of(segments[:1], item) == f"orders/country={NULL}"


# --------------------------------------------------------------------------------------------- header, key, partition


@given(
    headers=st.lists(
        st.tuples(st.sampled_from(["tenant", "other", "Tenant"]), st.none() | st.binary(max_size=40)), max_size=5
    )
)
def test_a_header_segment_is_the_last_header_of_that_name(headers: list[tuple[str, bytes | None]]) -> None:
    found = path_of([HeaderSegment(header="tenant")], record(headers=headers))
    assert_safe(found)
    last = next((data for name, data in reversed(headers) if name == "tenant"), None)
    segment = found.removeprefix("orders/tenant=")
    assert segment == (NULL if not last else encode_segment(last))
    if last and "~" not in segment:
        assert unquote_to_bytes(segment) == last


def test_a_header_name_that_is_no_label_needs_a_name() -> None:
    with pytest.raises(LayoutError, match="name: is required"):
        HeaderSegment(header="x tenant")
    assert path_of([HeaderSegment(header="x tenant", name="tenant")], record(headers=[("x tenant", b"a")])) == (
        "orders/tenant=a"
    )


@given(key=st.none() | st.binary(max_size=100), buckets=st.integers(1, 1024))
def test_a_key_segment_is_the_key_or_its_bucket(key: bytes | None, buckets: int) -> None:
    by_value = path_of([KeySegment()], record(key=key))
    by_bucket = path_of([KeySegment(buckets=buckets)], record(key=key))
    assert_safe(by_value)
    assert_safe(by_bucket)
    if not key:
        assert (by_value, by_bucket) == (f"orders/key={NULL}", f"orders/key_bucket={NULL}")
        return
    bucket = int(by_bucket.removeprefix("orders/key_bucket="))
    assert 0 <= bucket < buckets
    assert bucket == key_bucket(key, buckets) == int.from_bytes(hashlib.sha256(key).digest()[:8]) % buckets
    if "~" not in by_value:
        assert unquote_to_bytes(by_value.removeprefix("orders/key=")) == key


def test_key_buckets_spread_keys_over_every_bucket() -> None:
    counts = [0] * 16
    for n in range(1600):
        counts[key_bucket(f"user-{n}".encode(), 16)] += 1
    assert min(counts) > 60  # 100 expected per bucket


@given(partition=st.integers(0, 2**31 - 1))
def test_a_partition_segment_is_the_kafka_partition(partition: int) -> None:
    assert path_of([PartitionSegment(name="p")], record(partition=partition)) == f"orders/p={partition}"


# --------------------------------------------------------------------------------------------- time


@given(
    moment=st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC])
    ),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham"]),
    as_text=st.booleans(),
)
def test_a_time_field_in_epoch_millis_or_iso_8601_is_formatted_in_its_zone(
    moment: datetime, zone: str, as_text: bool
) -> None:
    millis = int(moment.timestamp() * 1000)
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    value = moment.isoformat() if as_text else millis
    segment = TimeSegment(field="meta.created_at", pattern="dt=%Y-%m-%d/%H%M", timezone=zone)
    found = path_of([segment], record(json.dumps({"meta": {"created_at": value}}).encode(), timestamp=0))
    assert found == f"orders/{moment.astimezone(ZoneInfo(zone)).strftime('dt=%Y-%m-%d/%H%M')}"


def test_iso_text_without_an_offset_is_utc_and_with_one_is_converted() -> None:
    segment = TimeSegment(field="t", pattern="%Y-%m-%dT%H%M", timezone="Europe/Berlin")
    for text, expected in (
        ("2026-11-28T23:30:00", "2026-11-29T0030"),
        ("2026-11-28T23:30:00Z", "2026-11-29T0030"),
        ("2026-11-29T01:30:00+02:00", "2026-11-29T0030"),
        ("2026-11-28", "2026-11-28T0100"),
    ):
        assert path_of([segment], record(json.dumps({"t": text}).encode())) == f"orders/{expected}", text


@pytest.mark.parametrize(
    "value",
    [None, b"{}", b'{"t": null}', b'{"t": 1e300}', b'{"t": -Infinity}', b'{"t": NaN}', b'{"t": -99999999999999999}'],
)
def test_a_missing_time_or_one_outside_the_calendar_is_the_null_time_path(value: bytes | None) -> None:
    assert path_of([TimeSegment(field="t", pattern="y=%Y/%m")], record(value)) == f"orders/y={NULL}/{NULL}"


@pytest.mark.parametrize("time", ['"tomorrow"', "true", '{"a": 1}', "[1]", '"' + "2026" * 100 + '"'])
def test_a_time_field_that_is_no_time_rejects_the_record(time: str) -> None:
    with pytest.raises(PartitionValueError, match="time field 't' holds") as raised:
        path_of([TimeSegment(field="t")], record(f'{{"t": {time}}}'.encode()))
    assert raised.value.reason == "unpartitionable-record"
    assert len(str(raised.value)) < 300  # bounded, whatever the value


def test_the_record_timestamp_in_a_composed_layout() -> None:
    segments: list[Segment] = [PartitionSegment(), TimeSegment(pattern="hour=%H", timezone="Asia/Kolkata")]
    assert path_of(segments, record(timestamp=1_714_607_999_000)) == "orders/partition=3/hour=05"
    assert path_of(segments, record(timestamp=2**62)) == f"orders/partition=3/hour={NULL}"


# --------------------------------------------------------------------------------------------- composition

labels = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
segment_kinds: st.SearchStrategy[Segment] = st.one_of(
    st.builds(FieldSegment, field=st.sampled_from(["country", "customer.country", "a.b.c"]), name=labels),
    st.builds(HeaderSegment, header=st.sampled_from(["tenant", "trace-id"]), name=labels),
    st.builds(KeySegment, buckets=st.none() | st.integers(1, 64), name=labels),
    st.builds(PartitionSegment, name=labels),
    st.builds(
        TimeSegment,
        pattern=st.sampled_from(["y=%Y/m=%m", "%Y%m%d", "dt=%Y-%m-%d"]),
        timezone=st.sampled_from(["UTC", "Europe/Berlin"]),
        field=st.none() | st.just("created_at"),
    ),
)
layouts = st.lists(segment_kinds, min_size=1, max_size=8).filter(lambda segments: not layout_problems(segments))
documents = st.fixed_dictionaries(
    {},
    optional={
        "country": st.text(max_size=200),
        "customer": st.fixed_dictionaries({}, optional={"country": json_values}),
        "a": st.just({"b": {"c": "x/../y"}}),
        "created_at": st.integers(-(10**15), 10**15) | st.datetimes().map(lambda d: d.isoformat()) | st.none(),
    },
)


@settings(max_examples=300)
@given(
    segments=layouts,
    document=documents,
    topic=st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True) | st.text(min_size=1, max_size=40),
    key=st.none() | st.binary(max_size=200),
    headers=st.lists(st.tuples(st.sampled_from(["tenant", "trace-id"]), st.none() | st.binary(max_size=200))),
)
def test_composed_paths_are_safe_ordered_and_bounded(
    segments: list[Segment], document: dict[str, Any], topic: str, key: bytes | None, headers: Any
) -> None:
    item = record(json.dumps(document).encode(), topic=topic, key=key, headers=headers)
    path = path_of(segments, item)
    assert_safe(path, topic)
    parts = path.split("/")[1:]
    expected_parts = sum(s.pattern.count("/") + 1 if isinstance(s, TimeSegment) else 1 for s in segments)
    assert len(parts) == expected_parts
    labelled = [part.partition("=")[0] for part in parts if "=" in part]
    non_time = [s.label for s in segments if not isinstance(s, TimeSegment)]
    assert [label for label in labelled if label in non_time] == non_time  # in the configured order
    assert len(path) <= len(encode_topic(topic)) + 1 + longest_path(segments)
    # The archive tools find the object's coordinates in any layout.
    key_name = archive_key("topics/", path, topic, 3, 42)
    parsed = parse_key(key_name)
    assert parsed is not None
    assert (parsed.directory, parsed.partition, parsed.first_offset) == (f"topics/{path}", 3, 42)
    assert parsed.topic_segment == encode_topic(topic)


# --------------------------------------------------------------------------------------------- the settings


def test_segments_round_trip_through_the_environment() -> None:
    segments = [
        {"kind": "field", "field": "customer.country", "name": "country"},
        {"kind": "header", "header": "tenant"},
        {"kind": "key", "buckets": 8},
        {"kind": "partition", "name": "p"},
        {"kind": "time", "field": "created_at", "pattern": "dt=%Y-%m-%d", "timezone": "Europe/Berlin"},
    ]
    configured = new_settings(
        partitioner="segments",
        partition_segments=json.dumps(segments),
        storage_class="INTELLIGENT_TIERING",
        object_tags='{"team": "data platform", "cost-center": "42"}',
    )
    env = configured.to_env()
    assert env["PARTITION_SEGMENTS"] == json.dumps(segments)
    again = Settings.from_env(env)
    assert again == configured
    assert again.segments == configured.segments
    assert json.loads(segments_json(again.segments)) == segments
    assert (again.storage_class, again.tags) == ("INTELLIGENT_TIERING", {"team": "data platform", "cost-center": "42"})


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ("{}", "PARTITION_SEGMENTS (partition_segments) must be a JSON list of segment objects; got dict"),
        ("[]", "PARTITION_SEGMENTS (partition_segments) must list 1 to 8 segments; got 0"),
        ('[{"kind": "colour"}]', "[0].kind: must be one of field, header, key, partition, time; got 'colour'"),
        ('[{"kind": "field"}]', "[0].field: is required"),
        ('[{"kind": "field", "field": "a..b"}]', "[0].field: must be a field name or a path of field names"),
        ('[{"kind": "field", "field": "a", "nme": "x"}]', "[0].nme: is not a field of a field segment"),
        ('[{"kind": "key", "buckets": "8"}]', "[0].buckets: must be a whole number; got '8'"),
        ('[{"kind": "key", "buckets": 0}]', "[0].buckets: must be a whole number from 1 to 1024; got 0"),
        ('[{"kind": "partition", "name": "a/b"}]', "[0].name: must be 1-64 of A-Z a-z 0-9 _ . -"),
        ('[{"kind": "time", "pattern": "%Y-%j"}]', "[0].pattern: may use only the directives"),
        ('[{"kind": "time", "timezone": "Mars/Base"}]', "[0].timezone: must be an IANA time zone"),
        ('[{"kind": "partition"}, {"kind": "time", "pattern": "partition=%Y"}]', "repeats the label(s) 'partition'"),
        ("[" + ",".join(['{"kind": "partition"}'] * 9) + "]", "must list 1 to 8 segments; got 9"),
    ],
)
def test_bad_segments_are_named_by_their_place(segments: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        new_settings(partitioner="segments", partition_segments=segments)
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
    assert all(problem.startswith("PARTITION_SEGMENTS (partition_segments) ") for problem in raised.value.problems)


def test_every_problem_of_a_segment_is_reported_at_once() -> None:
    _, problems = parse_segments('[{"kind": "time", "pattern": "%Q", "timezone": "Nowhere", "field": "1", "x": 1}]')
    assert [problem.split(":")[0] for problem in problems] == ["[0].x", "[0].pattern", "[0].timezone", "[0].field"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"partitioner": "segments"}, "PARTITION_SEGMENTS (partition_segments) is required when PARTITIONER is"),
        (
            {"partition_segments": '[{"kind": "partition"}]'},
            "PARTITION_SEGMENTS (partition_segments) only applies when PARTITIONER is 'segments'",
        ),
        (
            {"partitioner": "segments", "partition_segments": '[{"kind": "key"}]', "time_pattern": "%Y"},
            "TIME_PARTITION_PATTERN (time_pattern) only applies when PARTITIONER is 'time'",
        ),
        (
            {"partitioner": "segments", "partition_segments": '[{"kind": "key"}]', "partition_field": "a"},
            "PARTITION_FIELD (partition_field) only applies when PARTITIONER is 'field'",
        ),
        ({"storage_class": "GLACIER"}, "STORAGE_CLASS (storage_class) must be one of STANDARD, INTELLIGENT_TIERING"),
        ({"storage_class": "DEEP_ARCHIVE"}, "DEEP_ARCHIVE needs a restore"),
        ({"storage_class": "standard"}, "got 'standard'"),
        ({"object_tags": "[1]"}, "OBJECT_TAGS (object_tags) must be a JSON object of tag keys to values; got list"),
        ({"object_tags": json.dumps({f"k{n}": "v" for n in range(11)})}, "has 11 tags; S3 allows at most 10"),
        ({"object_tags": '{"aws:team": "x"}'}, "key 'aws:team' must not start with 'aws:'"),
        ({"object_tags": '{"team": "a,b"}'}, "value of 'team' must be 0-256 characters of letters, digits"),
        ({"object_tags": json.dumps({"k" * 129: "v"})}, "must be 1-128 characters"),
        ({"object_tags": json.dumps({"k": "\U0001f600" * 129})}, "value of 'k' must be 0-256"),  # UTF-16: 258
        ({"object_tags": '{"": "v"}'}, "key '' must be 1-128 characters"),
        ({"object_tags": '{"k": 1}'}, "value of 'k' must be a string; got 1"),
        ({"partitioner": "field", "partition_field": "customer..country"}, "PARTITION_FIELD (partition_field) must be"),
    ],
)
def test_bad_settings_name_the_variable(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        new_settings(**overrides)
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_tags_within_s3_limits_are_accepted() -> None:
    tags = {f"key {n}": "é/ü:+=@._-" for n in range(9)} | {"k" * 128: "v" * 256}
    assert new_settings(object_tags=json.dumps(tags)).tags == tags
