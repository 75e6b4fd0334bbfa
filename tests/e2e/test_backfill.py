"""End to end: a batch the event source gave up on is found by `kafka-s3-archiver verify` ("not archived, only in
Kafka", exit 1) and re-archived by `kafka-s3-archiver backfill` from the broker with the function's own code, against
the local broker (Tansu) and the stack deployed to LocalStack. Both commands run as the installed console script, in
their own processes, configured only by `--config config/local.json` and the local stack's standard environment
(the stack's outputs are looked up in LocalStack's CloudFormation).

The only stand-in is local/faults.py's proxy, which makes the function's dead-letter sends fail so the emulator gives
up on the batch holding a poison record, as AWS's event source does after its retries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import config, produce
from local.faults import SQS_QUEUE_MISSING, Rule, sqs_send
from tests.e2e.conftest import Deployed, archived, dead_letters, function_configuration, object_keys, run_emulator

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "kafka-s3-archiver")


def cli(deployed: Deployed, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **deployed.endpoints.env()}
    return subprocess.run(
        [CLI, *args], cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(autouse=True)
def _remove_the_topics_objects(local_stack: Deployed, topic: str) -> Iterator[None]:
    """The bucket is shared by the session: leave no uncompacted objects behind for the deployed audit of later
    tests (it audits the whole bucket)."""
    yield
    s3 = local_stack.client("s3")
    for prefix in (f"topics/{topic}/", f"dead-letter/{topic}/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=local_stack.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=local_stack.bucket, Key=item["Key"])


def config_for(topic: str, tmp_path: Path) -> str:
    """config/local.json (the deployed stack's config) with this test's topic as its topic."""
    document = json.loads((config.ROOT / "config" / "local.json").read_text())
    document["eventSource"]["topics"] = [topic]
    path = tmp_path / "local.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_a_given_up_batch_is_reported_then_backfilled_from_kafka(
    local_stack: Deployed, topic: str, fault_proxy: Any, tmp_path: Path
) -> None:
    produced = produce.produce_orders(
        local_stack.endpoints.kafka_bootstrap, topic, count=60, partitions=1, tombstones=2, poison=1, seed=13
    )
    poison = next(p for p in produced if p.kind == "poison")
    fault_proxy.add(Rule(sqs_send, SQS_QUEUE_MISSING))  # the function can never dead-letter the poison record
    with function_configuration(local_stack, AWS_ENDPOINT_URL_SQS=fault_proxy.url):
        run_emulator(topic, "--batch-size", "20", "--poison-header", "--max-retries", "1")
    (record,) = [letter for letter in dead_letters(local_stack, topic) if "KafkaBatchInfo" in letter]
    (span,) = record["KafkaBatchInfo"]["recordsInfo"].values()
    first, last = int(span["firstRecordOffset"]), int(span["lastRecordOffset"])
    assert first <= poison.offset <= last
    # The function wrote the batch's objects before its dead-letter send failed: of the given-up range, only the
    # poison record is in no object. That is what verify calls not archived, only in Kafka.
    only_in_kafka = sorted(set(range(first, last + 1)) - {offset for _, offset in archived(local_stack, topic)})
    assert only_in_kafka == [poison.offset]

    deployment = config_for(topic, tmp_path)
    check = ["verify", "--config", deployment, "--prefix", f"topics/{topic}/", "--topic", topic]
    check += ["--group", f"{topic}-group", "--expect", "high"]
    before = cli(local_stack, *check, "--output", "text")
    assert before.returncode == 1, before.stderr
    assert f"NOT ARCHIVED, ONLY IN KAFKA {poison.offset}" in before.stdout
    backfill_hint = f"kafka-s3-archiver backfill --topic {topic} --partition 0 --from-offset {poison.offset}"
    assert backfill_hint in before.stdout
    assert "INCOMPLETE" in before.stdout

    # The runbook's remedy: backfill the on-failure record's whole range.
    backfill = ["backfill", "--config", deployment, "--topic", topic, "--partition", "0"]
    backfill += ["--from-offset", str(first), "--to-offset", str(last), "--batch-size", "20"]
    result = cli(local_stack, *backfill)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["recordsRead"] == last - first + 1
    # The poison record is poison only in the emulator's event (its --poison-header test hook corrupts the value
    # it sends); in Kafka it is a valid record, so the backfill archives its bytes. The rest of the range is in the
    # objects the function wrote: recognised, not written twice.
    assert summary["recordsArchived"] == 1
    assert summary["recordsAlreadyArchived"] == last - first
    assert summary["recordsDeadLettered"] == 0
    assert "Traceback" not in result.stderr

    records = archived(local_stack, topic)
    expected = {(p.partition, p.offset): p for p in produced}
    assert set(records) == set(expected)  # the whole topic is archived now, nothing twice
    for coordinates, item in expected.items():
        (copy,) = records[coordinates]
        assert copy["key"] == (item.key.encode() if item.key is not None else None)
        assert copy["value"] == (item.value.encode() if item.value is not None else None)

    objects = sorted(object_keys(local_stack, topic))
    etags = [local_stack.client("s3").head_object(Bucket=local_stack.bucket, Key=key)["ETag"] for key in objects]
    again = cli(local_stack, *backfill)  # safe to repeat: the conditional writes recognise what is there
    assert again.returncode == 0, again.stderr
    assert sorted(object_keys(local_stack, topic)) == objects
    assert [
        local_stack.client("s3").head_object(Bucket=local_stack.bucket, Key=key)["ETag"] for key in objects
    ] == etags
    assert all(len(copies) == 1 for copies in archived(local_stack, topic).values())

    after = cli(local_stack, *check)
    assert after.returncode == 0, after.stdout + after.stderr
    report = json.loads(after.stdout)
    assert report["complete"] is True
    (partition,) = report["partitions"]
    assert partition["notArchived"] == []
    assert partition["givenUpSinceArchived"] == [[first, last]]  # the on-failure message may now be deleted


def test_backfill_past_the_end_of_the_partition_says_what_is_not_in_kafka(
    local_stack: Deployed, topic: str, tmp_path: Path
) -> None:
    produce.produce_orders(local_stack.endpoints.kafka_bootstrap, topic, count=5, partitions=1, tombstones=0, poison=0)
    deployment = config_for(topic, tmp_path)
    backfill = ["backfill", "--config", deployment, "--partition", "0"]
    result = cli(local_stack, *backfill, "--topic", topic, "--from-offset", "3", "--to-offset", "40")
    assert result.returncode == 2
    assert "ends at offset 4" in result.stderr
    assert "offsets 5..40 are not in Kafka" in result.stderr
    assert "Traceback" not in result.stderr
    assert {offset for _, offset in archived(local_stack, topic)} == {3, 4}  # what Kafka had is archived
    unknown = cli(local_stack, *backfill, "--topic", "not-in-config", "--from-offset", "0", "--to-offset", "1")
    assert unknown.returncode == 2
    assert "not one of the config's eventSource.topics" in unknown.stderr
