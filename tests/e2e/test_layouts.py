"""End to end: a composed layout, a storage class and tags, through LocalStack and the Tansu broker.

The deployed function (config/local.json, the default layout) is reconfigured for the test through the Lambda API,
as a redeploy with ``archive.partitioner: "segments"`` would set it: a field of the value, a header, a hash bucket
of the key and the day and hour of a time field in Europe/Berlin. The emulator archives real produced records; then
the archive is verified (the completeness audit against the broker), compacted (archive_ops, against LocalStack's
S3) and replayed into a fresh topic, each checked on its real output.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from archive_ops.archive_index import list_archive, parse_key, read_envelopes
from archive_ops.compact import CompactionConfig, Compactor
from archive_ops.replay import ReplayConfig, Replayer, Selection
from local import produce
from tests.e2e.conftest import Deployed, audit, function_configuration, object_keys, run_emulator
from tests.ops.test_replay import consume_all, create_topic

pytestmark = pytest.mark.e2e

NULL = "__HIVE_DEFAULT_PARTITION__"
SEGMENTS = [
    {"kind": "field", "field": "store"},
    {"kind": "header", "header": "producer", "name": "source"},
    {"kind": "key", "buckets": 4},
    {"kind": "time", "field": "createdAt", "pattern": "day=%Y-%m-%d/hour=%H", "timezone": "Europe/Berlin"},
]
TAGS = {"team": "data-platform", "layout": "composed"}
LAYOUT_ENV = {
    "PARTITIONER": "segments",
    "PARTITION_SEGMENTS": json.dumps(SEGMENTS),
    "TIME_PARTITION_PATTERN": "year=%Y/month=%m/day=%d/hour=%H",  # the defaults: the time segment has its own
    "TIME_PARTITION_TIMEZONE": "UTC",
    "STORAGE_CLASS": "STANDARD_IA",
    "OBJECT_TAGS": json.dumps(TAGS),
}


def expected_directory(topic: str, item: produce.Produced) -> str:
    """The directory of a produced record, computed here from what was produced, not by the archiver's code."""
    value = json.loads(item.value) if item.value is not None else {}
    store = value.get("store") or NULL
    assert item.key is not None
    bucket = int.from_bytes(hashlib.sha256(item.key.encode()).digest()[:8], "big") % 4
    if "createdAt" in value:
        moment = datetime.fromisoformat(value["createdAt"]).astimezone(ZoneInfo("Europe/Berlin"))
        time_path = moment.strftime("day=%Y-%m-%d/hour=%H")
    else:
        time_path = f"day={NULL}-{NULL}-{NULL}/hour={NULL}"
    return f"topics/{topic}/store={store}/source=local.produce/key_bucket={bucket}/{time_path}"


def storage_of(deployed: Deployed, key: str) -> tuple[str, dict[str, str]]:
    s3 = deployed.client("s3")
    head = s3.head_object(Bucket=deployed.bucket, Key=key)
    tags = s3.get_object_tagging(Bucket=deployed.bucket, Key=key)["TagSet"]
    return head.get("StorageClass", "STANDARD"), {tag["Key"]: tag["Value"] for tag in tags}


def directories_and_offsets(deployed: Deployed, topic: str) -> dict[tuple[int, int], str]:
    """(partition, offset) -> the directory of the object holding it, read from the objects themselves."""
    s3 = deployed.client("s3")
    held: dict[tuple[int, int], str] = {}
    for item in list_archive(s3, deployed.bucket, "topics/", topic=topic):
        body = s3.get_object(Bucket=deployed.bucket, Key=item.key)["Body"].read()
        for record in read_envelopes(body):
            coordinates = (record["partition"], record["offset"])
            assert coordinates not in held, f"{coordinates} archived twice"
            held[coordinates] = item.ref.directory
    return held


def test_a_composed_layout_is_archived_verified_compacted_and_replayed(local_stack: Deployed, topic: str) -> None:
    produced = produce.produce_orders(
        local_stack.endpoints.kafka_bootstrap, topic, count=240, partitions=2, tombstones=4, poison=0, seed=15
    )
    with function_configuration(local_stack, timeout=None, **LAYOUT_ENV):
        run_emulator(topic, "--batch-size", "25")

    # Archived where the layout says, with the storage class and tags, every record once.
    held = directories_and_offsets(local_stack, topic)
    assert held == {(p.partition, p.offset): expected_directory(topic, p) for p in produced}
    keys = object_keys(local_stack, topic)
    assert len({key.rsplit("/", 1)[0] for key in keys}) >= 8  # really spread: stores x buckets x hours
    for key in keys:
        assert storage_of(local_stack, key) == ("STANDARD_IA", TAGS), key

    # verify: complete against the broker's high watermarks, no duplicates, no conflicts.
    result = audit(local_stack, topic)
    assert result["complete"], result
    assert (result["duplicateCount"], result["conflictCount"], result["gapCount"]) == (0, 0, 0)

    # compact: merges within each directory + partition; merged objects keep storage class and tags.
    s3 = local_stack.client("s3")
    report = Compactor(s3, CompactionConfig(bucket=local_stack.bucket, topic=topic)).run()
    assert report.merges, "the batches left several objects per directory"
    assert not report.failed
    assert not report.conflicts
    for merge in report.merges:
        ref = parse_key(merge.key)
        assert ref is not None
        assert ref.last_offset is not None
        assert storage_of(local_stack, merge.key) == ("STANDARD_IA", TAGS)
    assert len(object_keys(local_stack, topic)) < len(keys)
    assert directories_and_offsets(local_stack, topic) == held  # nothing moved, nothing lost
    result = audit(local_stack, topic)
    assert result["complete"], result
    assert (result["duplicateCount"], result["conflictCount"]) == (0, 0)

    # replay: a fresh topic gets every record, each partition in offset order.
    target = f"{topic}-replayed-{uuid.uuid4().hex[:4]}"
    bootstrap = local_stack.endpoints.kafka_bootstrap
    create_topic(bootstrap, target, 2)
    summary = Replayer(
        s3,
        ReplayConfig(
            bucket=local_stack.bucket, selection=Selection(topic), target_topic=target, bootstrap_servers=bootstrap
        ),
    ).run()
    assert summary.records == len(produced)
    messages = consume_all(bootstrap, target, 2, len(produced))
    replayed: Counter[tuple[int, bytes | None, bytes | None]] = Counter(
        (m.partition(), m.key(), m.value()) for m in messages
    )
    original: Counter[tuple[int, bytes | None, bytes | None]] = Counter(
        (p.partition, p.key.encode() if p.key else None, p.value.encode() if p.value is not None else None)
        for p in produced
    )
    assert replayed == original
    for partition in (0, 1):
        values: list[Any] = [m.value() for m in messages if m.partition() == partition]
        in_order = [
            p.value.encode() if p.value is not None else None
            for p in sorted(produced, key=lambda p: p.offset)
            if p.partition == partition
        ]
        assert values == in_order
