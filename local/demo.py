"""`make demo`: the whole pipeline on this machine, in one command, in a few minutes.

1. installs the local stack (LocalStack + the host Lambda executor, the Tansu broker) under .local/ if needed;
2. starts the broker and LocalStack on free 127.0.0.1 ports (or uses KAFKA_BOOTSTRAP_SERVERS / AWS_ENDPOINT_URL);
3. deploys the project's CDK stack to LocalStack with cdklocal (no Kafka event-source mapping: LocalStack has none);
4. produces a sample stream of orders across 3 partitions, with tombstones and a few poison records;
5. runs the event-source-mapping emulator, which invokes the function deployed in LocalStack, until all is archived;
6. prints the S3 layout, a few decoded records, the DLQ contents and the function's metrics;
7. runs the compaction and the audit the stack deploys (inside LocalStack, as their schedules would) and prints what
   they did and found, then the completeness audit against the broker;
8. stops what it started, unless ``--keep`` (or KEEP=1 with make).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import fastavro

from archive_ops import verify
from archive_ops.archive_index import list_objects
from local import aws, config, deploy, maintenance, produce, stack


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 100 - len(text)), flush=True)


def run_emulator(instance: str, poison: bool) -> dict[str, Any]:
    """``python -m local.esm`` as its own process (as a user would run it); its JSON progress lines, condensed."""
    # Batches of 60 records, as a busy topic's invocations would be: many small objects for compaction to merge.
    cmd = [sys.executable, "-m", "local.esm", "--instance", instance, "--until-idle", "3", "--progress-interval", "2"]
    cmd += ["--batch-size", "60"]
    if poison:
        cmd.append("--poison-header")
    process = subprocess.Popen(cmd, cwd=config.ROOT, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert process.stdout is not None
    last: dict[str, Any] = {}
    for line in process.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            print(line, end="")
            continue
        kind = event.get("event")
        if kind == "invoke":
            print(
                f"  invoke   {event['records']:>5} records, {event['bytes']:>8} bytes, attempt {event['attempt']}"
                f"  ({event['first']} .. {event['last']})"
            )
        elif kind == "invoked":
            summary = event.get("summary", {})
            print(
                f"  archived {summary.get('recordsArchived', '?'):>5} records in {summary.get('objectsWritten', '?')} "
                f"object(s), dead-lettered {summary.get('recordsDeadLettered', '?')}"
            )
        elif kind == "committed":
            print(f"  commit   {event['offsets']}")
        elif kind in {"progress", "stopped"}:
            last = event
            print(
                f"  {kind:<8} {event['records']} records, {event['records_per_s']} rec/s, "
                f"{event['objects_written']} objects, lag {event['lag']}"
            )
        elif kind in {"assigned", "invoke-failed", "discarded", "idle"}:
            print(f"  {kind:<8} " + json.dumps({k: v for k, v in event.items() if k not in {"t", "event"}}))
    if process.wait() != 0:
        raise RuntimeError(f"the emulator exited with {process.returncode}")
    return last


def show_layout(s3: Any, bucket: str) -> list[str]:
    keys = []
    for item in list_objects(s3, bucket):
        keys.append(item["Key"])
        print(f"  {item['Size']:>8}  s3://{bucket}/{item['Key']}")
    return keys


def show_records(s3: Any, bucket: str, keys: list[str], limit: int = 3) -> None:
    avro = [key for key in keys if key.endswith(".avro")]
    if not avro:
        print("  (no archive objects)")
        return
    body = s3.get_object(Bucket=bucket, Key=avro[0])["Body"].read()
    reader = fastavro.reader(BytesIO(body))
    schema = reader.writer_schema
    print(f"  {avro[0]}  (codec {reader.codec}, schema {schema.get('name') if isinstance(schema, dict) else '?'})")
    shown = 0
    tombstone_shown = False
    for record in reader:
        assert isinstance(record, dict)
        value = record.get("value")
        is_tombstone = value is None
        if shown >= limit and (tombstone_shown or not is_tombstone):
            continue
        text = "null (tombstone)" if value is None else bytes(value).decode(errors="replace")[:110]
        key = record.get("key")
        headers = {
            h["key"]: (bytes(h["value"]).decode(errors="replace") if h.get("value") is not None else None)
            for h in record.get("headers") or []
        }
        print(
            f"  offset {record['offset']:>4} p{record['partition']} key={bytes(key).decode() if key else None} "
            f"ts={record['timestamp']} headers={headers}\n      value={text}"
        )
        shown += 1
        tombstone_shown = tombstone_shown or is_tombstone


def show_dead_letters(sqs: Any, queue_url: str) -> None:
    messages = verify.peek_queue(sqs, queue_url, visibility_timeout=3)
    if not messages:
        print("  (empty)")
    for body in messages:
        if "KafkaBatchInfo" in body:
            print(f"  on-failure record: {body['requestContext']['condition']} {body['KafkaBatchInfo']['recordsInfo']}")
        else:
            print(
                f"  {body.get('topic')}-{body.get('partition')}@{body.get('offset')}: {body.get('reason')} "
                f"({body.get('errorClass')}: {str(body.get('errorMessage'))[:80]})"
            )


def show_metrics(cloudwatch: Any, service: str) -> None:
    now = datetime.now(tz=UTC)
    names = ["RecordsArchived", "RecordsDeadLettered", "ObjectsWritten", "BytesWritten"]
    values = []
    for name in names:
        stats = cloudwatch.get_metric_statistics(
            Namespace="KafkaS3Archiver",
            MetricName=name,
            Dimensions=[{"Name": "service", "Value": service}],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum"],
        )
        total = sum(point["Sum"] for point in stats.get("Datapoints", []))
        values.append(f"{name}={total:g}")
    print("  CloudWatch (LocalStack), namespace KafkaS3Archiver: " + ", ".join(values))


def show_maintenance(
    clients: Any, endpoints: config.Endpoints, outputs: dict[str, Any], topic: str, objects_before: int
) -> None:
    """Compaction (planner -> SQS -> workers) and the audit's figures for ``topic``."""
    lambda_client = clients.client("lambda", endpoints)
    planned, keys = maintenance.compact(
        lambda_client=lambda_client,
        sqs=clients.client("sqs", endpoints),
        s3=clients.client("s3", endpoints),
        outputs=outputs,
        topic=topic,
    )
    print(
        f"  compaction: the planner queued {planned['groupsQueued']} group(s); the workers merged "
        f"{objects_before} objects into {len(keys)}:"
    )
    for key in keys:
        print(f"    s3://{outputs['bucket']}/{key}")
    findings = maintenance.audit(lambda_client=lambda_client, outputs=outputs)
    figures = findings["topics"].get(topic, {})
    shown = ("ArchivedRecords", "GapOffsets", "DuplicateOffsets", "ConflictOffsets", "PendingCompactions")
    print(
        "  audit (from S3 alone, published as metrics per topic): "
        + ", ".join(f"{n} {figures.get(n, 0):g}" for n in shown)
    )
    if "FreshnessSeconds" in figures:
        print(f"  freshness: the newest archived record is {figures['FreshnessSeconds']:.0f} s old")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--keep",
        action="store_true",
        default=os.environ.get("KEEP") == "1",
        help="leave the broker and LocalStack running afterwards (stop with `make local-down`)",
    )
    p.add_argument("--count", type=int, default=600, help="records to produce")
    p.add_argument("--instance", default=None, help="default: $LOCAL_INSTANCE or 'default' (shared with make local-up)")
    args = p.parse_args(argv)
    started = time.monotonic()
    instance = args.instance or stack.default_instance()
    was_running = stack.load_state(instance) is not None and stack.status(instance).get("running", False)
    try:
        heading("1/7 install the local stack (.local/)")
        stack.install(
            kafka=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), localstack=not os.environ.get("AWS_ENDPOINT_URL")
        )
        print("  ready: LocalStack + the host Lambda executor, the Lambda runtime (boto3), the Tansu broker")
        heading("2/7 start the Kafka-protocol broker and LocalStack on 127.0.0.1")
        state = stack.up(instance)
        heading("3/7 deploy the CDK stack to LocalStack (cdklocal, -c withEventSource=false)")
        outputs = deploy.deploy(instance)
        endpoints = state.endpoints
        heading("4/7 produce a sample stream: orders across 3 partitions, with tombstones and poison records")
        topic = outputs["event_source"]["topics"][0]
        produced = produce.produce_orders(endpoints.kafka_bootstrap, topic, count=args.count, partitions=3)
        kinds = Counter(item.kind for item in produced)
        print(f"  produced {len(produced)} records to {topic}: {dict(kinds)}")
        heading("5/7 run the event-source-mapping emulator (invokes the function deployed in LocalStack)")
        run_emulator(instance, poison=True)
        heading("6/7 results")
        s3, sqs = aws.client("s3", endpoints), aws.client("sqs", endpoints)
        print("S3 layout:")
        keys = show_layout(s3, outputs["bucket"])
        print("A few decoded records:")
        show_records(s3, outputs["bucket"], keys)
        print("Dead-letter queue:")
        show_dead_letters(sqs, outputs["queue_url"])
        print("Metrics:")
        function = aws.client("lambda", endpoints).get_function_configuration(FunctionName=outputs["function"])
        show_metrics(
            aws.client("cloudwatch", endpoints), function["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME", "")
        )
        print(
            f"  dashboard: {outputs['dashboard']} (aws cloudwatch get-dashboard --endpoint-url {endpoints.aws_endpoint}"
            f" --dashboard-name {outputs['dashboard']})"
        )
        heading("7/7 the deployed compaction and audit, run in LocalStack as their schedules would")
        show_maintenance(aws, endpoints, outputs, topic, len([key for key in keys if key.endswith(".avro")]))
        print("Completeness (kafka-s3-archiver verify --expect high):")
        result = verify.audit(
            s3=s3,
            bucket=outputs["bucket"],
            sqs=sqs,
            queue_url=outputs["queue_url"],
            on_failure_queue_url=outputs.get("on_failure_queue_url"),
            bootstrap=endpoints.kafka_bootstrap,
            topics=[topic],
            group=outputs["event_source"].get("consumerGroupId"),
            expect="high",
            visibility_timeout=3,
        )
        print("\n".join("  " + line for line in verify.text_summary(result).splitlines()))
        print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
        return 0 if result["complete"] else 1
    except RuntimeError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep or was_running:
            print(
                f"the stack keeps running (instance {instance!r}); stop it with: make local-down"
                + ("" if instance == "default" else f" LOCAL_INSTANCE={instance}")
            )
        else:
            stack.down(instance)


if __name__ == "__main__":
    sys.exit(main())
