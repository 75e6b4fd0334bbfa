"""The two CLIs end to end against (moto) S3, through their own argument parsing and boto3 client."""

from __future__ import annotations

import json

import pytest

from archive_ops import compact, replay
from tests.ops.archive_builder import archive_batches
from tests.unit.aws_fakes import BUCKET, FakeAws


def test_compact_cli_dry_run_then_compact_then_audit(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    written = archive_batches(aws)

    assert compact.main(["--bucket", BUCKET, "--dry-run", "--topic", "orders", "--partition", "1"]) == 0
    planned = json.loads(capsys.readouterr().out)["planned"]
    assert [len(plan["inputs"]) for plan in planned] == [10]
    assert sorted(aws.keys()) == sorted(written)

    assert compact.main(["--bucket", BUCKET, "--target-size", "10MiB"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [merge["inputs"] for merge in report["merges"]] == [10, 10]
    assert len(aws.keys()) == 2

    assert compact.main(["--bucket", BUCKET, "--audit"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["topics"]["orders"]["ArchivedRecords"] == 400
    assert (audit["gapOffsets"], audit["duplicateOffsets"], audit["conflictOffsets"]) == (0, 0, 0)
    assert [p["gaps"] for p in audit["partitions"]] == [[], []]


def test_replay_cli_dry_run(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    archive_batches(aws)
    argv = ["--bucket", BUCKET, "--topic", "orders", "--partition", "0", "--from-offset", "150", "--dry-run"]
    assert replay.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == 50
    assert summary["partitions"]["0"]["first_offset"] == 150


def test_replay_cli_without_a_broker_says_what_to_set(
    aws: FakeAws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    archive_batches(aws, batches=1)
    assert replay.main(["--bucket", BUCKET, "--topic", "orders"]) == 1
    assert "KAFKA_BOOTSTRAP_SERVERS" in capsys.readouterr().err
