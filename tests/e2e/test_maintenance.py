"""End to end: the compaction and the audit the stack deploys, run *inside LocalStack* as cdklocal deployed them.

The planner is invoked through the Lambda API (as its EventBridge schedule would), queues work on the deployed SQS
queue, and LocalStack's SQS event source runs the worker Lambdas through the host executor. The audit Lambda then
reads the archive from S3 alone. Every assertion reads real outputs: S3 listings, Avro contents, the functions'
results, and the completeness audit against the broker.
"""

from __future__ import annotations

from typing import Any

import pytest

from archive_ops.archive_index import list_archive, parse_key, read_envelopes
from archiver.decoding import to_event_record
from local import produce
from tests.e2e.conftest import Deployed, audit, invoke_function, run_compaction, run_emulator

pytestmark = pytest.mark.e2e


def replay_into_function(deployed: Deployed, topic: str, partition: int, offsets: range) -> dict[str, Any]:
    """Deliver archived records again, as a retried batch with other boundaries would (offsets where no object
    starts, so the conditional write cannot recognise them): the duplicates compaction must remove."""
    s3 = deployed.client("s3")
    records = []
    for item in list_archive(s3, deployed.bucket, "topics/", topic=topic, partitions=[partition]):
        body = s3.get_object(Bucket=deployed.bucket, Key=item.key)["Body"].read()
        records += [to_event_record(r) for r in read_envelopes(body) if r["offset"] in offsets]
    records.sort(key=lambda record: record["offset"])
    event = {"eventSource": "SelfManagedKafka", "records": {f"{topic}-{partition}": records}}
    return invoke_function(deployed, deployed.function, event)


def test_deployed_compaction_and_audit_converge_the_archive(local_stack: Deployed, topic: str) -> None:
    produced = produce.produce_orders(
        local_stack.endpoints.kafka_bootstrap, topic, count=300, partitions=2, tombstones=2, poison=2, seed=21
    )
    run_emulator(topic, "--batch-size", "20", "--poison-header")
    retry = replay_into_function(local_stack, topic, 0, range(5, 33))
    assert retry["recordsArchived"] > 0  # a new object: offsets archived twice now

    before = audit(local_stack, topic)
    assert before["complete"]
    assert before["duplicateCount"] > 0

    planned, keys = run_compaction(local_stack, topic)
    assert planned["groupsQueued"] >= 2

    # One object per partition (everything fits the target size), every offset once.
    assert sorted(ref.partition for ref in map(parse_key, keys) if ref is not None) == [0, 1]
    after = audit(local_stack, topic)
    assert after["complete"], after
    assert (after["duplicateCount"], after["conflictCount"], after["gapCount"]) == (0, 0, 0)
    archived = sum(part["archivedRecords"] for part in after["partitions"])
    assert archived == len([p for p in produced if p.kind != "poison"])

    findings = invoke_function(local_stack, local_stack.outputs["audit_function"])
    # Per topic: other tests share the bucket, and may leave gaps (a batch given up on) or objects not compacted yet.
    figures = findings["topics"][topic]
    assert (figures["GapOffsets"], figures["DuplicateOffsets"], figures["ConflictOffsets"]) == (0, 0, 0), findings
    assert (figures["PendingCompactions"], figures["RedundantObjects"]) == (0, 0), findings
    assert findings["topics"][topic]["ArchivedRecords"] == archived
    assert findings["topics"][topic]["FreshnessSeconds"] >= 0
    assert (
        local_stack.client("s3").list_objects_v2(Bucket=local_stack.bucket, Prefix="archiver-state/audit/")["KeyCount"]
        >= 2
    )
