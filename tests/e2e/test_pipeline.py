"""End to end: a real Kafka-protocol broker (Tansu), the CDK stack deployed to LocalStack with cdklocal, the function
running inside LocalStack through the host executor, and the event-source-mapping emulator as its own process.

Every assertion reads real outputs back: S3 listings and Avro objects, DLQ messages, committed consumer-group offsets.
The only stand-in is ``local/faults.py``, a proxy that injects S3/SQS failures, because LocalStack's free edition has
no fault injection; the function is pointed at it through its own ``AWS_ENDPOINT_URL_S3`` / ``_SQS`` variables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from local import config
from local.faults import S3_SLOW_DOWN, SQS_QUEUE_MISSING, Rule, s3_put, sqs_send
from tests.e2e.conftest import (
    Deployed,
    archived,
    assert_archive_matches,
    audit,
    committed,
    dead_letters,
    finish,
    function_configuration,
    log_end,
    object_keys,
    produce_into,
    read_until,
    run_emulator,
    start_emulator,
)

pytestmark = pytest.mark.e2e


def test_archives_exactly_the_produced_records(local_stack: Deployed, topic: str) -> None:
    produced = produce_into(local_stack, topic, count=300, partitions=3, tombstones=4, poison=3, seed=11)

    run = run_emulator(topic, "--batch-size", "100", "--poison-header")

    assert_archive_matches(local_stack, topic, produced, exactly_once=True)
    assert committed(local_stack, topic, 3) == log_end(produced)
    assert run.stopped["records"] == 300
    # The function's EMF metrics came back through LogResult and were counted (and put to CloudWatch).
    assert run.stopped["records_archived"] == 297
    assert run.stopped["records_dead_lettered"] == 3
    assert run.stopped["objects_written"] == len(object_keys(local_stack, topic))
    assert all(batch["records"] <= 100 for batch in run.of("invoke"))
    # ... and published to LocalStack's CloudWatch, where the deployed dashboard reads them.
    names = {
        m["MetricName"] for m in local_stack.client("cloudwatch").list_metrics(Namespace="KafkaS3Archiver")["Metrics"]
    }
    assert {"RecordsArchived", "ObjectsWritten", "RecordsDeadLettered", "BatchLatency"} <= names


def test_msk_events_in_process_mode(local_stack: Deployed, topic: str) -> None:
    produced = produce_into(local_stack, topic, count=120, partitions=2, tombstones=2, poison=2, seed=5)

    run = run_emulator(topic, "--mode", "in-process", "--format", "msk", "--batch-size", "50", "--poison-header")

    assert_archive_matches(local_stack, topic, produced, exactly_once=True)
    assert {letter["eventSource"] for letter in dead_letters(local_stack, topic)} == {"aws:kafka"}
    assert run.stopped["failed_invocations"] == 0


@pytest.mark.parametrize("partitions", [1, 3])
def test_killed_between_invocation_and_commit_then_restarted(
    local_stack: Deployed, topic: str, partitions: int
) -> None:
    produced = produce_into(local_stack, topic, count=240, partitions=partitions, tombstones=2, poison=0, seed=3)
    process = start_emulator(topic, "--batch-size", "40", "--pause-before-commit", "30")
    try:
        # The function has archived the first batch; the emulator is paused before committing it. Kill it there.
        events = read_until(process, lambda event: event.get("event") == "invoked", timeout=60)
    finally:
        finish(process, kill=True)  # SIGKILL
    written = events[-1]["summary"]["keysWritten"]
    assert written
    assert set(written) <= set(object_keys(local_stack, topic))
    assert all(offset < 0 for offset in committed(local_stack, topic, partitions).values())  # nothing committed

    run_emulator(topic, "--batch-size", "40")

    # Redelivered from the committed offsets: nothing lost, and every record written again is byte-identical.
    assert_archive_matches(local_stack, topic, produced, exactly_once=partitions == 1)
    assert committed(local_stack, topic, partitions) == log_end(produced)
    keys = object_keys(local_stack, topic)
    if partitions == 1:
        # One partition re-batches identically, so the killed batch's object was rewritten under its own key.
        assert set(written) <= set(keys)
        assert len(keys) == len(set(keys)) == 240 // 40


def test_s3_taken_away_then_back(local_stack: Deployed, topic: str, fault_proxy: Any) -> None:
    produced = produce_into(local_stack, topic, count=150, partitions=2, tombstones=1, poison=0, seed=8)
    fault_proxy.drop_connections(True)  # S3 answers nothing: every request's connection is dropped
    # A short function timeout makes each attempt fail in seconds, as a long outage would on AWS.
    with function_configuration(local_stack, timeout=5, AWS_ENDPOINT_URL_S3=fault_proxy.url):
        process = start_emulator(topic, "--batch-size", "50", "--until-idle", "2")
        try:
            events = read_until(process, lambda event: event.get("event") == "invoke-failed", timeout=90)
            assert all(offset < 0 for offset in committed(local_stack, topic, 2).values())
            fault_proxy.drop_connections(False)  # S3 is back
            events += read_until(process, lambda event: event.get("event") == "stopped", timeout=120)
            assert process.wait(timeout=30) == 0
        finally:
            finish(process)
    assert any(
        "Timedout" in event.get("error", "") or "function error" in event.get("error", "")
        for event in events
        if event.get("event") == "invoke-failed"
    )
    assert fault_proxy.dropped > 0
    assert_archive_matches(local_stack, topic, produced, exactly_once=False)
    assert committed(local_stack, topic, 2) == log_end(produced)


def test_localstack_frozen_then_resumed(local_stack: Deployed, topic: str) -> None:
    """LocalStack (S3, SQS and the function) is stopped with SIGSTOP mid-run and continued: nothing is lost."""
    if local_stack.localstack_pid is None:
        pytest.skip("LocalStack is external (AWS_ENDPOINT_URL): this test stops only a LocalStack it started")
    produced = produce_into(local_stack, topic, count=200, partitions=2, tombstones=2, poison=2, seed=21)
    process = start_emulator(topic, "--batch-size", "25", "--until-idle", "2", "--poison-header")
    try:
        read_until(process, lambda event: event.get("event") == "committed", timeout=60)
        os.killpg(local_stack.localstack_pid, signal.SIGSTOP)
        try:
            time.sleep(4)
        finally:
            os.killpg(local_stack.localstack_pid, signal.SIGCONT)
        read_until(process, lambda event: event.get("event") == "stopped", timeout=120)
        assert process.wait(timeout=30) == 0
    finally:
        finish(process)
    assert_archive_matches(local_stack, topic, produced, exactly_once=False)


def test_dlq_send_failures_retry_the_batch(local_stack: Deployed, topic: str, fault_proxy: Any) -> None:
    produced = produce_into(local_stack, topic, count=100, partitions=1, tombstones=0, poison=2, seed=13)
    rule = fault_proxy.add(Rule(sqs_send, SQS_QUEUE_MISSING))
    with function_configuration(local_stack, AWS_ENDPOINT_URL_SQS=fault_proxy.url):
        process = start_emulator(topic, "--batch-size", "20", "--poison-header", "--until-idle", "2")
        try:
            events = read_until(
                process, lambda event: event.get("event") == "invoke-failed" and event["attempt"] >= 2, timeout=90
            )
            failing = [e for e in events if e.get("event") == "invoke"][-1]
            fault_proxy.clear()  # the queue is reachable again
            events += read_until(process, lambda event: event.get("event") == "stopped", timeout=120)
            assert process.wait(timeout=30) == 0
        finally:
            finish(process)
    assert rule.served >= 2
    # While the batch kept failing, no offset at or past its first record was committed.
    first_offset = int(failing["first"].rsplit("@", 1)[1])
    index = events.index(failing)
    success = next(i for i, e in enumerate(events) if i > index and e.get("event") == "invoked")
    for event in events[index:success]:
        if event.get("event") == "committed":
            assert all(offset <= first_offset for offset in event["offsets"].values())
    assert_archive_matches(local_stack, topic, produced, exactly_once=True)


def test_retries_exhausted_sends_an_aws_shaped_on_failure_record(
    local_stack: Deployed, topic: str, fault_proxy: Any
) -> None:
    produced = produce_into(local_stack, topic, count=60, partitions=1, tombstones=0, poison=1, seed=2)
    poison = next(p for p in produced if p.kind == "poison")
    fault_proxy.add(Rule(sqs_send, SQS_QUEUE_MISSING))  # the function can never dead-letter the poison record
    with function_configuration(local_stack, AWS_ENDPOINT_URL_SQS=fault_proxy.url):
        run = run_emulator(topic, "--batch-size", "20", "--poison-header", "--max-retries", "1")

    (discarded,) = run.of("discarded")
    (record,) = [letter for letter in dead_letters(local_stack, topic) if "KafkaBatchInfo" in letter]
    assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "KafkaBatchInfo"}
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith(f":function:{local_stack.function}")
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["version"] == "1.0"
    info = record["KafkaBatchInfo"]
    assert set(info) == {"batchSize", "bootstrapServers", "payloadSize", "recordsInfo"}  # self-managed: no ARN
    assert info["batchSize"] == 20
    assert info["bootstrapServers"] == local_stack.endpoints.kafka_bootstrap
    (span,) = info["recordsInfo"].values()
    assert int(span["firstRecordOffset"]) <= poison.offset <= int(span["lastRecordOffset"])
    assert span["firstRecordTimestamp"].endswith("Z")
    assert discarded["records"] == info["recordsInfo"]
    # The function wrote the batch's other records before the dead-letter queue failed it; the poison record is
    # only in the on-failure record's range: not archived, only in Kafka. The audit says so and is not complete.
    result = audit(local_stack, topic)
    assert result["complete"] is False, result
    assert result["gapCount"] == 0
    assert result["partitions"][0]["gaps"] == []
    assert result["partitions"][0]["notArchived"] == [[poison.offset, poison.offset]]
    assert committed(local_stack, topic, 1) == log_end(produced)


def test_s3_throttling_slow_down(local_stack: Deployed, topic: str, fault_proxy: Any) -> None:
    produced = produce_into(local_stack, topic, count=200, partitions=2, tombstones=2, poison=1, seed=17)
    rule = fault_proxy.add(Rule(s3_put, S3_SLOW_DOWN, once_per_path=True))  # every object's first PUT: 503 SlowDown
    with function_configuration(local_stack, AWS_ENDPOINT_URL_S3=fault_proxy.url):
        run = run_emulator(topic, "--batch-size", "50", "--poison-header")
    # Every object's first PUT, and the dead-letter ledger entry's (the poison record's), was throttled once.
    ledger = local_stack.client("s3").list_objects_v2(Bucket=local_stack.bucket, Prefix=f"dead-letter/{topic}/")
    assert rule.served == len(object_keys(local_stack, topic)) + ledger["KeyCount"] > 1
    assert_archive_matches(local_stack, topic, produced, exactly_once=True)
    assert Counter(event["event"] for event in run.events)["invoke-failed"] == 0  # the SDK's retries rode it out


def test_sigterm_stops_cleanly_after_committing(local_stack: Deployed, topic: str) -> None:
    produced = produce_into(local_stack, topic, count=200, partitions=2, tombstones=0, poison=0, seed=4)
    process = start_emulator(topic, "--batch-size", "20")
    try:
        read_until(process, lambda event: event.get("event") == "committed", timeout=60)
        process.send_signal(signal.SIGTERM)
        events = read_until(process, lambda event: event.get("event") == "stopped", timeout=60)
        assert process.wait(timeout=30) == 0
    finally:
        finish(process)
    assert any(event.get("event") == "stopping" for event in events)
    # Whatever it committed is archived; the rest is picked up by the next run, with nothing lost.
    archived_now = archived(local_stack, topic)
    for partition, offset in committed(local_stack, topic, 2).items():
        assert all((partition, o) in archived_now for o in range(max(offset, 0)))
    run_emulator(topic, "--batch-size", "20")
    assert_archive_matches(local_stack, topic, produced, exactly_once=True)


def test_verify_cli_reports_a_gap(local_stack: Deployed, topic: str) -> None:
    produce_into(local_stack, topic, count=60, partitions=1, tombstones=0, poison=0, seed=6)
    run_emulator(topic, "--batch-size", "20")
    keys = sorted(object_keys(local_stack, topic))
    local_stack.client("s3").delete_object(Bucket=local_stack.bucket, Key=keys[1])  # offsets 20..39 go missing

    command = [
        str(Path(sys.executable).parent / "kafka-s3-archiver"), "verify", "--config", "config/local.json",
        "--prefix", f"topics/{topic}/", "--topic", topic, "--group", f"{topic}-group", "--expect", "high",
    ]  # fmt: skip
    env = {**os.environ, **local_stack.endpoints.env()}
    result = subprocess.run(command, cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["complete"] is False
    (partition,) = report["partitions"]
    assert partition["gaps"] == [[20, 39]]
    assert partition["archived"] == [[0, 19], [40, 59]]
