"""The Lambda entry point: settings at cold start, the summary it returns, its log line and EMF metrics."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from archiver.errors import ArchiveWriteError, SettingsError
from tests.conftest import FakeLambdaContext
from tests.kafka_events import kafka_event, kafka_record, load_event
from tests.unit.aws_fakes import BUCKET, FakeAws


def cold_start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """Import handler.py afresh, as a new Lambda container would, with ``env`` as its environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("handler", None)
    return importlib.import_module("handler")


@pytest.fixture
def handler(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    env = {
        "ARCHIVE_BUCKET": BUCKET,
        "DEAD_LETTER_QUEUE_URL": aws.queue_url,
        "POWERTOOLS_SERVICE_NAME": "archiver-test",
        "POWERTOOLS_METRICS_NAMESPACE": "KafkaS3Archiver",
    }
    yield cold_start(monkeypatch, env)
    sys.modules.pop("handler", None)


def emf_documents(output: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [doc for doc in documents if "_aws" in doc]


def test_handler_archives_the_documented_msk_event(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    handler: ModuleType,
    aws: FakeAws,
    lambda_context: FakeLambdaContext,
) -> None:
    result = handler.lambda_handler(load_event("msk.json"), lambda_context)

    key = "topics/mytopic/partition=0/mytopic+0+00000000000000000015.avro"
    assert aws.keys() == [key]
    assert result["keysWritten"] == [key]
    assert result["recordsArchived"] == 1

    output = capsys.readouterr().out
    (metrics,) = emf_documents(output)
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "KafkaS3Archiver"
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert metrics["service"] == "archiver-test"
    assert metrics["RecordsArchived"] == [1.0]
    assert metrics["ObjectsWritten"] == [1.0]
    assert metrics["RecordsDeadLettered"] == [0.0]
    assert metrics["BytesWritten"] == [float(len(aws.body(key)))]
    assert metrics["BatchLatency"][0] > 0

    (log,) = [record for record in caplog.records if record.getMessage() == "batch archived"]
    assert log.batch["keysWritten"] == [key]  # type: ignore[attr-defined]
    assert log.batch["topics"] == ["mytopic"]  # type: ignore[attr-defined]
    assert log.batch["partitions"] == {"mytopic-0": {"firstOffset": 15, "lastOffset": 15, "records": 1}}  # type: ignore[attr-defined]


def test_handler_counts_dead_letters_in_its_metrics(
    handler: ModuleType, aws: FakeAws, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    event = kafka_event([kafka_record("t", 0, 1), kafka_record("t", 0, 2) | {"value": "?"}], source="SelfManagedKafka")
    result = handler.lambda_handler(event, lambda_context)
    assert (result["recordsArchived"], result["recordsDeadLettered"]) == (1, 1)
    (metrics,) = emf_documents(capsys.readouterr().out)
    assert metrics["RecordsDeadLettered"] == [1.0]
    assert [body["offset"] for body in aws.dead_letters()] == [2]


def test_handler_raises_when_s3_fails_so_no_offset_is_committed(
    handler: ModuleType, aws: FakeAws, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(ArchiveWriteError, match="NoSuchBucket"):
        handler.lambda_handler(load_event("self_managed.json"), lambda_context)
    (metrics,) = emf_documents(capsys.readouterr().out)
    assert metrics["BatchesFailed"] == [1.0]
    assert "RecordsArchived" not in metrics


def test_cold_start_names_every_bad_setting(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET", raising=False)
    with pytest.raises(SettingsError) as caught:
        cold_start(monkeypatch, {"DEAD_LETTER_QUEUE_URL": aws.queue_url, "AVRO_CODEC": "lz4"})
    sys.modules.pop("handler", None)
    assert caught.value.problems == ["ARCHIVE_BUCKET is required"]


def test_tracing_wraps_the_handler_only_when_it_is_on(
    handler: ModuleType, aws: FakeAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    def plain(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"archived": handler.archiver.archive(event).records_archived}

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert handler.traced(plain) is plain  # no Tracer, no X-Ray SDK import

    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED")
    wrapped = handler.traced(plain)
    assert wrapped is not plain
    # Outside Lambda, Powertools' Tracer disables itself, so the traced handler still runs here.
    assert wrapped(load_event("msk.json"), FakeLambdaContext()) == {"archived": 1}
