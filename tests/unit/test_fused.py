"""The fused pass (archiver/fused.py): every object it writes is byte for byte what ``fastavro.writer`` writes for the
same records, codec, key and sync marker, whatever route each record took; the request pool is not started per
batch; dead letters go out while objects upload, each after its ledger entry.

The reference below is computed without the fused pass: ``decode_event`` (envelope dicts), the partitioner on each
envelope, grouping and sorting by offset, and the general ``fastavro.writer`` (``encoding.fastavro_encode_records``).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.decoding import decode_event
from archiver.encoding import TIMESTAMP_MILLIS_MAX, TIMESTAMP_MILLIS_MIN, fastavro_encode_records
from archiver.errors import ArchiveWriteError
from archiver.fused import RawScan
from archiver.keys import archive_key
from archiver.partitioning import build_partitioner
from archiver.pipeline import Archiver
from archiver.reading import read_offsets
from archiver.settings import CODECS, Settings
from tests.kafka_events import b64, kafka_event, kafka_record
from tests.unit.aws_fakes import LimitedS3, LimitedSqs, client_error

HOUR = 3_600_000
BASE = 1_714_567_890_123


def expected_objects(event: dict[str, Any], settings: Settings) -> dict[str, bytes]:
    """key -> body, as the pipeline must write them: grouped and sorted independently, encoded by fastavro.writer."""
    partition_path = build_partitioner(settings)
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for envelope in decode_event(copy.deepcopy(event)).records:
        groups.setdefault((envelope["topic"], envelope["partition"], partition_path(envelope)), []).append(envelope)
    objects = {}
    for (topic, partition, path), records in groups.items():
        records.sort(key=lambda record: record["offset"])
        key = archive_key(settings.archive_prefix, path, topic, partition, records[0]["offset"])
        objects[key] = fastavro_encode_records(records, codec=settings.codec, key=key)
    return objects


def archive(event: dict[str, Any], settings: Settings, *, parallel: int | None = None) -> tuple[LimitedS3, Any]:
    s3, sqs = LimitedS3(bucket=settings.archive_bucket), LimitedSqs(queue_url=settings.dead_letter_queue_url)
    summary = Archiver(settings, s3_client=s3, sqs_client=sqs, parallel=parallel).archive(json.loads(json.dumps(event)))
    return s3, summary


def make_settings(codec: str = "zstandard", partitioner: str = "default") -> Settings:
    return Settings(
        archive_bucket="archive-bucket",
        dead_letter_queue_url=LimitedSqs().queue_url,
        codec=codec,  # type: ignore[arg-type]
        partitioner=partitioner,  # type: ignore[arg-type]
        partition_field="country" if partitioner == "field" else None,
    )


def edge_records() -> list[dict[str, Any]]:
    """Records that take every route: usual ones, and each thing the inline path hands to the general route.

    Partition 0 is in offset order, so its object keeps the inline path's bytes; partition 1 is out of order (its
    object is encoded again, sorted); partition 2 crosses the varints' 14- and 28-bit boundaries.
    """
    records = [
        kafka_record("orders", 0, n, headers=[("traceparent", f"00-{n:032x}-01".encode())], timestamp=BASE + n * 7_000)
        for n in range(40)
    ]
    records += [
        kafka_record("orders", 0, 40, value=None),  # tombstone
        kafka_record("orders", 0, 41, key=None),  # null key
        kafka_record("orders", 0, 42, key=b"", value=b""),  # empty key and value
        kafka_record("orders", 0, 43, headers=[("h", b"1"), ("h", b"2"), ("h", b"")]),  # repeated names
        kafka_record("orders", 0, 44, headers=[("\u00e9t\u00e9", b"\x00\x01\xff")]),  # non-ASCII name, 0 and 1 bytes
        kafka_record("orders", 0, 45, value=b"\xff" * 9_000),  # longer than a 2-byte varint length
        kafka_record("orders", 0, 46, key=b"k" * 9_000, headers=[("big", b"v" * 9_000)]),
        kafka_record("orders", 0, 47, value=json.dumps({"country": "FR", "pad": "x" * 3_000}).encode()),
        kafka_record("orders", 0, 48, timestamp=TIMESTAMP_MILLIS_MAX + 1),  # out of range: timestamp_raw
        kafka_record("orders", 0, 49, timestamp=TIMESTAMP_MILLIS_MIN),
        kafka_record("orders", 0, 50, timestamp=-1),  # "no timestamp"
        kafka_record("orders", 0, 51, timestamp=0),
        kafka_record("orders", 0, 52, timestamp=-(HOUR * 24 * 365)),  # before 1970, in range
        kafka_record("orders", 0, 53, timestamp=2**63 - 1),
        kafka_record("orders", 0, 54, headers=[]),
        *[kafka_record("orders", 0, n, headers=[("traceparent", b"x" * n)]) for n in range(55, 60)],
        kafka_record("orders", 0, 2**62, timestamp=BASE),  # a huge offset
        kafka_record("\u00fcml\u00e4ut", 3, 9, timestamp=BASE + HOUR),  # a non-ASCII topic
        kafka_record("t.x-1", 2**31 - 1, 7, timestamp=BASE + 2 * HOUR),
    ]
    records[43]["headers"].append({"nullable": None})  # a null header value
    records[44]["timestampType"] = "LOG_APPEND_TIME"
    del records[45]["timestampType"]  # missing: archived as ""
    records[46]["keySchemaMetadata"] = {"dataFormat": "JSON"}  # extra fields are ignored
    # Out of order and a duplicate in partition 1, records 5 s apart so the time partitioner splits them.
    records += [kafka_record("orders", 1, n, timestamp=BASE + n * 5_000) for n in (9, 3, 5, 5, 1_000, 2)]
    # Offsets and timestamps whose varints change their high bytes (8,192 offsets; 2**27 ms, 37 hours).
    records += [
        kafka_record("orders", 2, offset, timestamp=BASE + step * 20 * HOUR)
        for step, offset in enumerate([8_190, 8_191, 8_192, 8_193, 2**20, 2**40, 2**40 + 1])
    ]
    records += [kafka_record("orders", 5, n, timestamp=BASE + n) for n in range(10)]
    # Every 10 s from 12:51:30 to 13:01:20 UTC: the time partitioner starts a new hour, and object, mid-list.
    records += [kafka_record("orders", 6, n, timestamp=BASE + n * 10_000) for n in range(60)]
    return records


def irregular_event() -> dict[str, Any]:
    """A record of partition 5 in partition 1's list (partition 5's object is opened again), and bad records between
    good ones."""
    event = kafka_event(edge_records())
    event["records"]["orders-1"].append(kafka_record("orders", 5, 999, timestamp=BASE + 12 * HOUR))
    event["records"]["orders-0"][10:10] = [
        kafka_record("orders", 0, 1_001) | {"value": "not base64!"},
        kafka_record("orders", 0, 1_002) | {"partition": True},
        kafka_record("orders", 0, 1_003) | {"headers": [{"h": 3}]},
        kafka_record("orders", 0, 1_004) | {"headers": [{"h": [True]}]},
        "not a record",
    ]
    return event


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("partitioner", ["default", "time", "field"])
@pytest.mark.parametrize("parallel", [None, 1])  # 1: more lists than requests in flight, so objects go early
def test_every_object_is_what_fastavro_writer_writes(codec: str, partitioner: str, parallel: int | None) -> None:
    settings = make_settings(codec, partitioner)
    event = irregular_event()
    s3, summary = archive(event, settings, parallel=parallel)

    archived = {key: stored.body for key, stored in s3.objects.items() if key.endswith(".avro")}
    assert archived == expected_objects(event, settings)
    assert summary.records_dead_lettered == 5
    assert summary.records_received == summary.records_archived + 5
    assert summary.records_archived == 147


def test_a_record_in_another_partitions_list_reopens_its_object_and_keeps_offset_order() -> None:
    settings = make_settings()
    s3, _ = archive(irregular_event(), settings, parallel=1)
    (key,) = [key for key in s3.objects if key.startswith("topics/orders/partition=5/")]
    assert read_offsets(s3.objects[key].body) == [*range(10), 999]  # 999 came in partition 1's list


def test_an_objects_newest_timestamp_leaves_out_timestamps_in_the_future() -> None:
    now = int(time.time() * 1000)
    records = [kafka_record("t", 0, n, timestamp=now - 60_000 + n) for n in range(5)]
    records += [kafka_record("t", 0, 5, timestamp=now + 10 * 24 * HOUR), kafka_record("t", 0, 6, timestamp=now - HOUR)]
    s3, _ = archive(kafka_event(records), make_settings())
    (stored,) = s3.objects.values()
    assert stored.metadata["max-timestamp"] == str(now - 60_000 + 4)


@pytest.mark.parametrize(
    "broken",
    [{"topic": None}, {"topic": ""}, {"partition": None}, {"offset": None}, {"timestamp": None}, {"headers": None}],
)
def test_a_broken_record_right_after_one_of_the_general_route_is_dead_lettered(broken: dict[str, Any]) -> None:
    # The general route leaves no current group; the next record must not be taken for the group before it.
    event = kafka_event([kafka_record("orders", 0, 0), kafka_record("orders", 0, 1) | {"value": "!"}])
    event["records"]["orders-0"].append(kafka_record("orders", 0, 2) | broken)
    s3, summary = archive(event, make_settings())
    decoded = decode_event(copy.deepcopy(event))
    assert summary.records_dead_lettered == len(decoded.failures)
    assert {key: stored.body for key, stored in s3.objects.items() if key.endswith(".avro")} == expected_objects(
        event, make_settings()
    )


def test_most_records_take_the_inline_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The byte-identity tests above only prove the inline path if it wrote most of what they compare.
    general: list[Any] = []
    original = RawScan._general

    def counted(self: RawScan, records_key: str, raw: Any) -> None:
        general.append(raw)
        original(self, records_key, raw)

    monkeypatch.setattr(RawScan, "_general", counted)
    event = irregular_event()
    archive(event, make_settings())
    delivered = sum(len(records) for records in event["records"].values())
    assert len(general) < delivered / 2


def test_groups_are_handed_over_before_later_lists_are_read_when_there_are_many() -> None:
    events = [kafka_record("t", partition, n) for partition in range(4) for n in range(3)]
    settings = make_settings()
    scan = RawScan(
        kafka_event(events),
        partition_path=build_partitioner(settings),
        path_key="partition",
        typed_topics=(),
        codec="null",
        newest_limit=2**62,
        release_early_above=2,
    )
    groups = scan.groups()
    first = next(groups)
    assert (first.partition, scan.records_received, scan.batch.payload_bytes) == (
        0,
        12,
        3 * len(b"order-0")
        + sum(len(json.dumps({"order_id": n, "country": "DE", "amount": n * 10})) for n in range(3)),
    )
    assert [group.partition for group in groups] == [1, 2, 3]


# Records drawn from every shape a field can take, valid or not.
_TEXT = st.one_of(st.sampled_from(["orders", "t", "\u00e9", ""]), st.text(max_size=3), st.none(), st.integers())
_INT = st.one_of(st.integers(-5, 20), st.sampled_from([2**31, 2**62, 2**63, True, None, 1.0, "1"]))
_STAMP = st.one_of(
    st.integers(BASE, BASE + 10 * HOUR),
    st.sampled_from([TIMESTAMP_MILLIS_MAX, TIMESTAMP_MILLIS_MAX + 1, -1, 0, 2**63 - 1, -(2**63), True, None]),
)
_B64 = st.one_of(st.binary(max_size=40).map(b64), st.none(), st.sampled_from(["!", "QQ", "QQ==QQ==", "\u00e9", 5]))
_HEADER_VALUE = st.one_of(
    st.binary(max_size=5).map(list), st.none(), st.sampled_from([[True], [256], [-1], 3, "x", [1.0]])
)
_HEADERS = st.one_of(
    st.lists(
        st.dictionaries(_TEXT.filter(lambda v: isinstance(v, str)), _HEADER_VALUE, min_size=1, max_size=1), max_size=3
    ),
    st.none(),
    st.sampled_from(["", {}, [{}], [{"a": [1], "b": [2]}], ["x"]]),
)


@st.composite
def raw_records(draw: Any) -> Any:
    record: dict[str, Any] = {
        "topic": draw(_TEXT),
        "partition": draw(_INT),
        "offset": draw(_INT),
        "timestamp": draw(_STAMP),
        "timestampType": draw(_TEXT),
        "key": draw(_B64),
        "value": draw(_B64),
        "headers": draw(_HEADERS),
    }
    for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=2, unique=True)):
        del record[name]
    return draw(st.one_of(st.just(record), st.sampled_from([None, [], "r"])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["orders-0", "orders-1", "t-2"]), raw_records()), max_size=12))
def test_any_records_are_archived_as_fastavro_writes_them_or_dead_lettered_as_decoding_says(
    delivered: list[tuple[str, Any]],
) -> None:
    event: dict[str, Any] = {"eventSource": "SelfManagedKafka", "records": {}}
    for records_key, raw in delivered:
        event["records"].setdefault(records_key, []).append(raw)
    for partitioner in ("default", "time"):
        settings = make_settings("null", partitioner)
        s3, summary = archive(event, settings, parallel=1)
        archived = {key: stored.body for key, stored in s3.objects.items() if key.endswith(".avro")}
        assert archived == expected_objects(event, settings)
        assert summary.records_dead_lettered == len(decode_event(copy.deepcopy(event)).failures)


def request_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("archiver-request")}


def test_a_batch_of_one_object_starts_no_request_thread_and_later_batches_reuse_the_pool() -> None:
    before = request_threads()
    archiver = Archiver(make_settings(), s3_client=LimitedS3(), sqs_client=LimitedSqs())
    archiver.archive(kafka_event([kafka_record("t", 0, n) for n in range(5)]))
    assert request_threads() == before

    archiver.archive(kafka_event([kafka_record("t", p, n) for p in range(4) for n in range(5, 10)]))
    started = request_threads() - before
    assert 1 <= len(started) <= 4
    for first in range(10, 110, 5):
        archiver.archive(kafka_event([kafka_record("t", p, n) for p in range(4) for n in range(first, first + 5)]))
    later = request_threads() - before
    # The first threads are still the pool's; it grows to the 4 PUTs a batch has in flight at most, no further.
    assert started <= later
    assert len(later) <= 4


class RecordingS3(LimitedS3):
    """Remembers the order of its PUTs and of the SQS sends below; fails the object PUTs under ``fail``."""

    def __init__(self, log: list[str], fail: str = "") -> None:
        super().__init__()
        self.log, self.fail = log, fail

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail and self.fail in kwargs["Key"]:
            raise client_error("PutObject", "AccessDenied", "denied", 403)
        response = super().put_object(**kwargs)
        self.log.append(f"put {kwargs['Key']}")
        return response


class RecordingSqs(LimitedSqs):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.log.append("send " + ",".join(json.loads(entry["MessageBody"])["id"] for entry in kwargs["Entries"]))
        return super().send_message_batch(**kwargs)


def bad_and_good(partitions: int = 3) -> dict[str, Any]:
    records = [kafka_record("t", p, n) for p in range(partitions) for n in range(4)]
    records += [kafka_record("t", p, 100 + n) | {"value": "!"} for p in range(partitions) for n in range(12)]
    return kafka_event(records)


def test_dead_letters_are_sent_after_their_ledger_entries_and_the_batch_waits_for_both() -> None:
    log: list[str] = []
    archiver = Archiver(make_settings(), s3_client=RecordingS3(log), sqs_client=RecordingSqs(log))
    summary = archiver.archive(bad_and_good())

    assert summary.records_dead_lettered == 36
    ledger_done = max(index for index, line in enumerate(log) if "/ledger/" in line)
    first_send = min(index for index, line in enumerate(log) if line.startswith("send"))
    assert ledger_done < first_send
    sent = sorted(line.split(" ", 1)[1] for line in log if line.startswith("send"))
    assert len(",".join(sent).split(",")) == 36
    assert sum(line.startswith("put topics/") for line in log) == 3


def test_a_failed_object_put_fails_the_batch_once_every_request_has_finished() -> None:
    log: list[str] = []
    s3 = RecordingS3(log, fail="partition=1/")
    archiver = Archiver(make_settings(), s3_client=s3, sqs_client=RecordingSqs(log))
    with pytest.raises(ArchiveWriteError, match="AccessDenied"):
        archiver.archive(bad_and_good())
    settled = list(log)
    assert sum(line.startswith("put topics/") for line in settled) == 2  # the other objects were written
    threading.Event().wait(0.2)
    assert log == settled  # nothing of the failed batch was still running when it raised
