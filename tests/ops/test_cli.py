"""The `kafka-s3-archiver` command end to end against (moto) S3 and SQS, through its own argument parsing, its own
boto3 clients and its error handling: exit codes (0 success, 1 findings, 2 usage/configuration/connection), one
line instead of a traceback for each operator mistake, empty selections as errors, replay's target-topic guard.

moto serves S3, SQS and Secrets Manager in-process (the `aws` fixture); the command creates its clients with boto3's
standard configuration, which moto intercepts. Kafka is never reached here (tests marked e2e use the local broker).
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from archive_ops.archive_index import list_archive, read_envelopes
from archive_ops.cli import build_parser, main
from tests.ops.archive_builder import archive_batches
from tests.unit.aws_fakes import BUCKET, FakeAws

CLI = Path(sys.executable).parent / "kafka-s3-archiver"


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subcommands.choices)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str, *fragments: str) -> None:
    """The operator gets exactly one line on stderr, naming the problem and how to fix it, never a traceback."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- compact and audit -------------------------------------------------------------------------------------------------


def test_compact_dry_run_then_compact_then_audit(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    written = archive_batches(aws)
    code, out, _ = run(["compact", "--bucket", BUCKET, "--dry-run", "--topic", "orders", "--partition", "1"], capsys)
    assert code == 0
    assert [len(plan["inputs"]) for plan in json.loads(out)["planned"]] == [10]
    assert sorted(aws.keys()) == sorted(written)

    code, out, _ = run(["compact", "--bucket", BUCKET, "--target-size", "10MiB"], capsys)
    assert code == 0
    assert [merge["inputs"] for merge in json.loads(out)["merges"]] == [10, 10]
    assert len(aws.keys()) == 2

    code, out, _ = run(["audit", "--bucket", BUCKET], capsys)
    assert code == 0
    audit = json.loads(out)
    assert audit["topics"]["orders"]["ArchivedRecords"] == 400
    assert (audit["gapOffsets"], audit["duplicateOffsets"], audit["conflictOffsets"]) == (0, 0, 0)


def test_audit_exits_1_on_a_gap(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    keys = sorted(archive_batches(aws, partitions=(0,)))
    aws.s3.delete_object(Bucket=BUCKET, Key=keys[3])  # offsets 60..79 go missing
    code, out, _ = run(["audit", "--bucket", BUCKET, "--output", "text"], capsys)
    assert code == 1
    assert "gaps 60-79 (20)" in out
    assert "FINDINGS" in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["compact", "--prefix", "wrong/"], ("no archive objects", "s3://archive-bucket/wrong/", "--prefix")),
        (["compact", "--topic", "nosuch"], ("no archive objects of topic(s) nosuch", "--topic")),
        (["compact", "--target-size", "6GiB"], ("--target-size must be 1KiB to 5GiB", "one PUT")),
        (["audit", "--prefix", "wrong/"], ("no archive objects", "--prefix")),
        (["replay", "--topic", "nosuch", "--target-topic", "t", "--dry-run"], ("no archived objects of topic",)),
        (
            [
                "replay",
                "--topic",
                "orders",
                "--target-topic",
                "t",
                "--dry-run",
                "--from-offset",
                "30",
                "--to-offset",
                "5",
            ],
            ("--from-offset 30 is after --to-offset 5",),
        ),
        (
            ["replay", "--topic", "orders", "--target-topic", "t", "--dry-run", "--from-offset", "5000"],
            ("nothing selected",),
        ),
        (["cat", "--topic", "orders", "--partition", "7"], ("no archive objects", "orders partition 7")),
        (["cat", "--topic", "orders", "--partition", "0", "--from-offset", "900"], ("no archived records",)),
        (["cat", "--topic", "orders", "--partition", "0", "--from-offset", "9", "--to-offset", "2"], ("is after",)),
        (["verify", "--prefix", "wrong/", "--dead-letter-queue-url", ""], ("nothing to verify", "--prefix")),
    ],
)
def test_an_empty_selection_is_an_error(
    aws: FakeAws, capsys: pytest.CaptureFixture[str], argv: list[str], fragments: tuple[str, ...]
) -> None:
    archive_batches(aws, partitions=(0,), batches=2)
    code, out, err = run([*argv[:1], "--bucket", BUCKET, *argv[1:]], capsys)
    assert code == 2, (out, err)
    one_line_error(err, *fragments)


def test_a_missing_bucket_is_one_line(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["compact"], ["audit"], ["cat", "--topic", "t", "--partition", "0"], ["verify"]):
        code, _, err = run([*command, "--bucket", "no-such-bucket"], capsys)
        assert code == 2
        one_line_error(err, "bucket no-such-bucket does not exist", "--bucket")


def test_no_credentials_is_one_line(
    fake_aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup either
    for command in (["compact"], ["replay", "--topic", "t", "--target-topic", "u", "--dry-run"], ["verify"]):
        code, _, err = run([*command, "--bucket", BUCKET], capsys)
        assert code == 2
        one_line_error(err, "no AWS credentials", "AWS_PROFILE")


def test_an_unreachable_endpoint_is_one_line(
    fake_aws_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for command in (["compact"], ["audit"], ["verify"]):
        code, _, err = run([*command, "--bucket", BUCKET], capsys)
        assert code == 2
        one_line_error(err, "cannot reach the AWS endpoint http://127.0.0.1:9", "AWS_ENDPOINT_URL")


def test_no_region_is_one_line(
    fake_aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    config = json.loads(Path("config/local.json").read_text())
    del config["region"], config["account"]  # the region the stack's outputs are looked up in
    path = tmp_path / "no-region.json"
    path.write_text(json.dumps(config))
    code, _, err = run(["verify", "--config", str(path)], capsys)
    assert code == 2
    one_line_error(err, "no AWS region", "AWS_REGION")


@pytest.mark.parametrize(
    "argv",
    [
        ["compact", "--target-size", "big"],
        ["compact", "--older-than", "yesterday"],
        ["replay", "--topic"],
        ["cat", "--topic", "t", "--partition", "-1"],
        ["backfill", "--topic", "t"],
        ["verify", "--output", "xml"],
        ["nosuch"],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: kafka-s3-archiver" in err
    assert "Traceback" not in err


def test_a_bad_config_file_is_one_line(aws: FakeAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(Path("config/local.json").read_text()), "eventSource": {"topics": []}}))
    for command in (
        ["verify"],
        ["backfill", "--topic", "t", "--partition", "0", "--from-offset", "0", "--to-offset", "1"],
    ):
        code, _, err = run([*command, "--config", str(bad)], capsys)
        assert code == 2
        one_line_error(err, "eventSource.topics", str(bad))
    code, _, err = run(["synth", "--config", str(tmp_path / "missing.json")], capsys)
    assert code == 2
    one_line_error(err, "does not exist")


# -- replay's target-topic guard --------------------------------------------------------------------------------------


def test_replay_needs_an_explicit_target_topic(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    archive_batches(aws, partitions=(0,), batches=1)
    code, _, err = run(["replay", "--bucket", BUCKET, "--topic", "orders", "--dry-run"], capsys)
    assert code == 2
    one_line_error(err, "replay needs --target-topic", "--into-source-topic")
    code, _, err = run(["replay", "--bucket", BUCKET, "--topic", "orders", "--target-topic", "orders"], capsys)
    assert code == 2
    one_line_error(err, "is the source topic 'orders'", "--into-source-topic")
    code, _, err = run(
        ["replay", "--bucket", BUCKET, "--topic", "orders", "--into-source-topic", "--target-topic", "x"], capsys
    )
    assert code == 2
    one_line_error(err, "name different topics")


def test_replay_dry_run_counts_the_selection(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    archive_batches(aws)
    argv = ["replay", "--bucket", BUCKET, "--topic", "orders", "--target-topic", "copy", "--partition", "0"]
    code, out, _ = run([*argv, "--from-offset", "150", "--dry-run"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["records"] == 50
    assert summary["partitions"]["0"]["first_offset"] == 150


def test_replay_without_kafka_says_what_to_set(
    aws: FakeAws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    archive_batches(aws, batches=1)
    code, _, err = run(["replay", "--bucket", BUCKET, "--topic", "orders", "--target-topic", "copy"], capsys)
    assert code == 2
    one_line_error(err, "no Kafka bootstrap servers", "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS")


# -- cat ---------------------------------------------------------------------------------------------------------


def test_cat_json_lines_hold_the_exact_bytes(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    archive_batches(aws, partitions=(0,), batches=2)
    code, out, err = run(
        ["cat", "--bucket", BUCKET, "--topic", "orders", "--partition", "0", "--to-offset", "19"], capsys
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    archived = {
        record["offset"]: record
        for item in list_archive(aws.s3, BUCKET, "topics/", topic="orders")
        for record in read_envelopes(aws.body(item.key))
    }
    assert [line["offset"] for line in lines] == list(range(20))
    for line in lines:
        record = archived[line["offset"]]
        decode = base64.b64decode
        assert (decode(line["value"]) if line["value"] is not None else None) == record["value"]
        assert (decode(line["key"]) if line["key"] is not None else None) == record["key"]
        assert [(h["key"], decode(h["value"])) for h in line["headers"]] == [
            (h["key"], h["value"]) for h in record["headers"]
        ]
    assert any(line["value"] is None for line in lines)  # offset 5 is a tombstone


def test_cat_table_escapes_what_a_terminal_would_interpret(aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    from archive_ops.cat import escape

    assert escape(b"ok \xc3\xa9 \\ \n\x1b[31m \xff") == "ok \u00e9 \\\\ \\n\\x1b[31m \\xff"
    archive_batches(aws, partitions=(0,), batches=1)
    argv = ["cat", "--bucket", BUCKET, "--topic", "orders", "--partition", "0", "--output", "table"]
    code, out, _ = run([*argv, "--max-records", "6"], capsys)
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["offset", "timestamp", "(UTC)", "key", "value", "[headers]"]
    assert len(rows) == 7
    assert "(tombstone)" in rows[6]
    assert rows[6].split()[0] == "5"
    assert "order-1" in rows[2]
    assert "trace=t-1" in rows[2]


# -- verify: given-up batches ------------------------------------------------------------------------------------


def on_failure_record(topic: str, partition: int, first: int, last: int) -> dict[str, object]:
    """AWS's on-failure record for a Kafka batch the event source gave up on (docs/dead-letter.md)."""
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-24T10:00:00.000Z",
        "KafkaBatchInfo": {
            "batchSize": last - first + 1,
            "bootstrapServers": "b:9092",
            "recordsInfo": {f"{topic}-{partition}": {"firstRecordOffset": str(first), "lastRecordOffset": str(last)}},
        },
    }


def test_verify_calls_a_given_up_batch_not_archived_only_in_kafka(
    aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = sorted(archive_batches(aws, partitions=(0,), batches=5))
    aws.s3.delete_object(Bucket=BUCKET, Key=keys[2])  # the batch 40..59 was never archived: the mapping gave up
    on_failure = aws.sqs.create_queue(QueueName="on-failure")["QueueUrl"]
    aws.sqs.send_message(QueueUrl=on_failure, MessageBody=json.dumps(on_failure_record("orders", 0, 40, 59)))
    argv = [
        "verify",
        "--bucket",
        BUCKET,
        "--dead-letter-queue-url",
        aws.queue_url,
        "--on-failure-queue-url",
        on_failure,
    ]

    code, out, _ = run([*argv, "--output", "text"], capsys)
    assert code == 1
    assert "NOT ARCHIVED, ONLY IN KAFKA 40-59" in out
    assert "kafka-s3-archiver backfill --topic orders --partition 0 --from-offset 40 --to-offset 59" in out
    assert "COMPLETE" not in out.replace("INCOMPLETE", "")
    code, out, _ = run(argv, capsys)
    report = json.loads(out)
    assert (code, report["complete"], report["notArchivedCount"]) == (1, False, 20)
    assert report["partitions"][0]["notArchived"] == [[40, 59]]
    assert report["partitions"][0]["gaps"] == []  # named for what they are, not counted twice

    # After a backfill (here: the batch archived again), the range is accounted for and the message can go.
    archive_batches(aws, partitions=(0,), batches=1, start=40)
    code, out, _ = run(argv, capsys)
    report = json.loads(out)
    assert (code, report["complete"]) == (0, True)
    assert report["partitions"][0]["givenUpSinceArchived"] == [[40, 59]]


# -- the installed command ---------------------------------------------------------------------------------------


def test_the_installed_command_runs_and_every_flag_has_help_without_markup() -> None:
    result = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    commands = ("verify", "audit", "compact", "cat", "replay", "backfill", "synth", "deploy")
    assert all(command in result.stdout for command in commands)
    usage = subprocess.run([str(CLI), "compact", "--target-size"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr

    for name, parser in subcommand_parsers().items():
        assert parser.description, name
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"
        text = parser.format_help()
        markup = [mark for mark in ("``", ":class:", ":func:", ".. ") if mark in text]
        assert markup == [], name


def test_one_spelling_per_concept() -> None:
    """--topic (repeated, never --topics), --group (never --group-id), --*-queue-url, --output for formats."""
    parsers = subcommand_parsers().values()
    flags = {flag for parser in parsers for action in parser._actions for flag in action.option_strings}
    assert {"--topic", "--group", "--dead-letter-queue-url", "--on-failure-queue-url", "--output"} <= flags
    assert not {"--topics", "--group-id", "--queue-url", "--format"} & flags
