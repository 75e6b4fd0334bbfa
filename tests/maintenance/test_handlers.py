"""The deployed maintenance handlers (functions/maintenance) against (moto) S3 and SQS: the planner queues the
groups compaction would change, the workers compact them, and the audit publishes its findings as EMF metrics."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import FakeLambdaContext
from tests.ops.archive_builder import archive_batches, archived_records
from tests.ops.test_compact import retry_duplicates
from tests.unit.aws_fakes import BUCKET, FakeAws

HANDLERS = ("common", "compaction_planner", "compaction_worker", "audit")


class Context(FakeLambdaContext):
    """A context with a worker's 15 minutes left."""

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@pytest.fixture
def handlers(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """The handler modules, imported fresh inside moto with the environment infra gives them."""
    work_queue = aws.sqs.create_queue(QueueName="compaction-work")["QueueUrl"]
    environment = {
        "ARCHIVE_BUCKET": BUCKET,
        "ARCHIVE_PREFIX": "topics/",
        "COMPACTION_QUEUE_URL": work_queue,
        "COMPACTION_MIN_AGE_SECONDS": "0",
        "POWERTOOLS_SERVICE_NAME": "archiver-test",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for name in HANDLERS:
        sys.modules.pop(name, None)
    yield {name: importlib.import_module(name) for name in HANDLERS}
    for name in HANDLERS:
        sys.modules.pop(name, None)


def emf(output: str) -> list[dict[str, Any]]:
    """The EMF lines a handler printed, each metric's value summed (Powertools writes a list when it repeats)."""
    lines = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    return [{name: sum(v) if isinstance(v, list) else v for name, v in line.items()} for line in lines]


def work_items(aws: FakeAws, queue_url: str) -> list[dict[str, Any]]:
    """Received (and deleted) work messages, shaped as the SQS event source hands them to the worker."""
    records = []
    while batch := aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            records.append({"body": message["Body"], "messageId": message["MessageId"]})
            aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return records


def test_planner_queues_each_group_with_work_and_workers_compact_them(
    aws: FakeAws, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    archive_batches(aws, partitions=(0, 1))
    before, _ = archived_records(aws)
    queue = handlers["common"].settings.work_queue_url

    planned = handlers["compaction_planner"].lambda_handler({}, Context())
    assert planned == {"groupsQueued": 2}
    items = work_items(aws, queue)
    assert sorted(json.loads(item["body"])["directory"] for item in items) == [
        "topics/orders/partition=0",
        "topics/orders/partition=1",
    ]

    for item in items:  # one message per invocation, as the event source mapping is configured (batch size 1)
        result = handlers["compaction_worker"].lambda_handler({"Records": [item]}, Context())
        assert (result["merges"], result["objectsCompacted"], result["failed"]) == (1, 10, [])

    assert len(aws.keys("topics/")) == 2
    assert archived_records(aws) == (before, 1)
    assert handlers["compaction_planner"].lambda_handler({}, Context()) == {"groupsQueued": 0}
    emitted = emf(capsys.readouterr().out)
    assert sum(line.get("CompactionMerges", 0) for line in emitted) == 2


def test_worker_requeues_a_group_it_could_not_finish(aws: FakeAws, handlers: dict[str, ModuleType]) -> None:
    archive_batches(aws, partitions=(0,))
    queue = handlers["common"].settings.work_queue_url
    handlers["compaction_planner"].lambda_handler({}, Context())
    (item,) = work_items(aws, queue)

    class Late(Context):
        def get_remaining_time_in_millis(self) -> int:
            return 1_000  # under the safety margin: no merge may start

    result = handlers["compaction_worker"].lambda_handler({"Records": [item]}, Late())
    assert result["incomplete"]
    assert [again["body"] for again in work_items(aws, queue)] == [item["body"]]


def test_audit_publishes_per_topic_metrics_and_keeps_its_manifest(
    aws: FakeAws, handlers: dict[str, ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    retry_duplicates(aws)
    summary = handlers["audit"].lambda_handler({}, Context())

    assert summary["clean"]
    assert summary["duplicateOffsets"] == 10
    assert aws.keys("archiver-state/audit/") == ["archiver-state/audit/orders/partition=0.json"]
    emitted = emf(capsys.readouterr().out)
    per_topic = {
        name: line[name] for line in emitted if line.get("topic") == "orders" for name in line if name[0].isupper()
    }
    assert per_topic["DuplicateOffsets"] == 10
    assert per_topic["GapOffsets"] == 0
    assert per_topic["ConflictOffsets"] == 0
    assert per_topic["PendingCompactions"] == 2
    assert "FreshnessSeconds" in per_topic
    assert any(line.get("AuditRuns") == 1 for line in emitted)
