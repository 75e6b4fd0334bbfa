"""End-to-end fixtures: the real local stack (Tansu broker + LocalStack with the host executor), the CDK stack deployed
with cdklocal, and helpers to run the event-source-mapping emulator as a process and read back S3 and the DLQ.

The stack is started once per session through the project's own scripts (``local.stack``, ``local.deploy``), as an
instance of its own (``e2e``) on free ports, and stopped by PID at the end even when tests fail. Setting
``KAFKA_BOOTSTRAP_SERVERS`` / ``AWS_ENDPOINT_URL`` points the suite at existing services instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import fastavro
import pytest

from archive_ops import verify
from local import aws, config, deploy, faults, maintenance, produce, stack
from local.esm import events
from local.faults import FaultProxy

INSTANCE = "e2e"


@dataclass
class Deployed:
    endpoints: config.Endpoints
    outputs: dict[str, Any]
    localstack_pid: int | None

    def client(self, service: str, **kwargs: Any) -> Any:
        return aws.client(service, self.endpoints, **kwargs)

    @property
    def function(self) -> str:
        return str(self.outputs["function"])

    @property
    def bucket(self) -> str:
        return str(self.outputs["bucket"])

    @property
    def queue_url(self) -> str:
        return str(self.outputs["queue_url"])

    @property
    def on_failure_queue_url(self) -> str | None:
        """The event source's on-failure queue, when the stack has one apart from the dead-letter queue."""
        url = self.outputs.get("on_failure_queue_url")
        return str(url) if url else None


@pytest.fixture(scope="session")
def local_stack() -> Iterator[Deployed]:
    if stack.load_state(INSTANCE) is not None:
        stack.down(INSTANCE)  # left over from an interrupted run
    stack.install(
        kafka=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), localstack=not os.environ.get("AWS_ENDPOINT_URL")
    )
    try:
        state = stack.up(INSTANCE)
        outputs = deploy.deploy(INSTANCE)
        yield Deployed(
            endpoints=state.endpoints,
            outputs=outputs,
            localstack_pid=state.localstack.pid if state.localstack else None,
        )
    finally:
        stack.down(INSTANCE)


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40]
    return f"e2e-{name}-{uuid.uuid4().hex[:6]}"


@dataclass
class EmulatorRun:
    returncode: int
    events: list[dict[str, Any]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("event") == kind]

    @property
    def stopped(self) -> dict[str, Any]:
        return self.of("stopped")[-1]


def emulator_args(topic: str, *args: str) -> list[str]:
    """``python -m local.esm`` arguments for ``topic``, with its own consumer group ``<topic>-group``."""
    return [
        "--instance",
        INSTANCE,
        "--topics",
        topic,
        "--group-id",
        f"{topic}-group",
        "--progress-interval",
        "1",
        *args,
    ]


def emulator_command(topic: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "local.esm", *emulator_args(topic, *args)]


def start_emulator(topic: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        emulator_command(topic, *args), cwd=config.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def parse_events(lines: list[str]) -> list[dict[str, Any]]:
    events = []
    for line in lines:
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                events.append(value)
    return events


def run_emulator(topic: str, *args: str, timeout: float = 180) -> EmulatorRun:
    """Run the emulator until it is idle (everything committed, nothing new for 2 s)."""
    process = start_emulator(topic, "--until-idle", "2", *args)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"the emulator did not finish in {timeout} s:\n{output[-3000:]}")
    run = EmulatorRun(process.returncode, parse_events(output.splitlines()))
    assert run.returncode == 0, output[-3000:]
    return run


def finish(process: subprocess.Popen[str], *, kill: bool = False) -> None:
    """Kill (if asked, or if still running), reap, and close the emulator's output pipe."""
    if kill or process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


def read_until(process: subprocess.Popen[str], predicate: Any, timeout: float) -> list[dict[str, Any]]:
    """Read the emulator's JSON lines until ``predicate(event)``; returns the events seen."""
    assert process.stdout is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.extend(parse_events([line]))
        if seen and predicate(seen[-1]):
            return seen
    pytest.fail(f"the emulator never reached the expected point; saw: {seen[-5:]}")


def archived(deployed: Deployed, topic: str) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """(partition, offset) -> Avro records read back from every archive object of ``topic``."""
    s3 = deployed.client("s3")
    found: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=deployed.bucket, Prefix=f"topics/{topic}/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=deployed.bucket, Key=item["Key"])["Body"].read()
            for record in fastavro.reader(BytesIO(body)):
                assert isinstance(record, dict)
                record["_key"] = item["Key"]
                found.setdefault((int(record["partition"]), int(record["offset"])), []).append(record)
    return found


def object_keys(deployed: Deployed, topic: str) -> list[str]:
    s3 = deployed.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=deployed.bucket, Prefix=f"topics/{topic}/"):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def dead_letters(deployed: Deployed, topic: str) -> list[dict[str, Any]]:
    """DLQ messages about ``topic`` (the function's per-record letters and the emulator's on-failure records)."""
    sqs = deployed.client("sqs")
    messages = verify.peek_queue(sqs, deployed.queue_url, visibility_timeout=2)
    if deployed.on_failure_queue_url:
        messages += verify.peek_queue(sqs, deployed.on_failure_queue_url, visibility_timeout=2)
    mine = []
    for body in messages:
        if body.get("topic") == topic or any(
            name.rpartition("-")[0] == topic for name in (body.get("KafkaBatchInfo") or {}).get("recordsInfo", {})
        ):
            mine.append(body)
    return mine


def audit(deployed: Deployed, topic: str, bootstrap: str | None = None) -> dict[str, Any]:
    """The completeness audit of ``topic`` against everything produced (high watermark) and the committed offsets."""
    return verify.audit(
        s3=deployed.client("s3"),
        bucket=deployed.bucket,
        prefix=f"topics/{topic}/",
        sqs=deployed.client("sqs"),
        queue_url=deployed.queue_url,
        on_failure_queue_url=deployed.on_failure_queue_url,
        bootstrap=bootstrap or deployed.endpoints.kafka_bootstrap,
        topics=[topic],
        group=f"{topic}-group",
        expect="high",
        visibility_timeout=2,
    )


def produce_into(deployed: Deployed, topic: str, bootstrap: str | None = None, **kwargs: Any) -> list[produce.Produced]:
    return produce.produce_orders(bootstrap or deployed.endpoints.kafka_bootstrap, topic, **kwargs)


def log_end(produced: list[produce.Produced]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for item in produced:
        ends[item.partition] = max(ends.get(item.partition, 0), item.offset + 1)
    return ends


def assert_archive_matches(
    deployed: Deployed,
    topic: str,
    produced: list[produce.Produced],
    *,
    exactly_once: bool,
    bootstrap: str | None = None,
) -> None:
    """The full archive check: S3 holds every non-poison record with its key and value; the DLQ holds the poison
    ones; the audit against everything produced is complete (no gaps, nothing only in Kafka, no conflicts)."""
    records = archived(deployed, topic)
    expected = {(p.partition, p.offset): p for p in produced if p.kind != "poison"}
    assert set(records) == set(expected)
    for coordinates, item in expected.items():
        copies = records[coordinates]
        if exactly_once:
            assert len(copies) == 1, f"{coordinates} archived {len(copies)} times: {[c['_key'] for c in copies]}"
        for record in copies:
            assert record["key"] == (item.key.encode() if item.key is not None else None)
            assert record["value"] == (item.value.encode() if item.value is not None else None)
    poison = sorted((p.partition, p.offset) for p in produced if p.kind == "poison")
    letters = [letter for letter in dead_letters(deployed, topic) if "KafkaBatchInfo" not in letter]
    assert sorted({(letter["partition"], letter["offset"]) for letter in letters}) == poison
    assert {letter["reason"] for letter in letters} <= {"undecodable-record"}
    result = audit(deployed, topic, bootstrap)
    assert result["complete"], result
    assert result["conflictCount"] == 0, result
    if exactly_once:
        assert result["duplicateCount"] == 0, result


def committed(deployed: Deployed, topic: str, partitions: int, bootstrap: str | None = None) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    servers = bootstrap or deployed.endpoints.kafka_bootstrap
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"{topic}-group"})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in offsets}
    finally:
        consumer.close()


def kafka_event(topic: str, *, records: int, value_bytes: int, partitions: int = 1, first_offset: int = 0) -> bytes:
    """A self-managed Kafka event as the event source sends it: ``records`` per partition, JSON values."""
    batch = [
        events.KafkaRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=1_700_000_000_000 + offset,
            key=b"k",
            value=json.dumps({"n": offset, "pad": "x" * value_bytes}).encode(),
        )
        for partition in range(partitions)
        for offset in range(first_offset, first_offset + records)
    ]
    return events.encode_event(events.build_event(batch, events.EventSource(bootstrap_servers="127.0.0.1:9092")))


def invoke(deployed: Deployed, payload: bytes) -> tuple[float, dict[str, Any], str | None]:
    """Invoke the deployed function once (no SDK retry): seconds taken, the response body and FunctionError."""
    client = deployed.client("lambda", read_timeout=300, retries={"total_max_attempts": 1})
    started = time.monotonic()
    response = client.invoke(FunctionName=deployed.function, Payload=payload, LogType="Tail")
    elapsed = time.monotonic() - started
    body = json.loads(response["Payload"].read() or b"null")
    return elapsed, body if isinstance(body, dict) else {}, response.get("FunctionError")


@contextlib.contextmanager
def function_configuration(deployed: Deployed, *, timeout: int | None = None, **environment: str) -> Iterator[None]:
    """Change the deployed function's timeout and/or add environment variables for the block, then restore them."""
    with faults.function_configuration(deployed.client("lambda"), deployed.function, timeout=timeout, **environment):
        yield


@pytest.fixture
def fault_proxy(local_stack: Deployed) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of LocalStack (local/faults.py), stopped after the test."""
    proxy = FaultProxy(local_stack.endpoints.aws_endpoint)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


# -- the deployed compaction and audit (tests/e2e/test_maintenance.py, test_soak.py) -----------------------------------


def invoke_function(deployed: Deployed, function: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Invoke a deployed function by name with a JSON payload; its JSON result (it must not fail)."""
    return maintenance.invoke(deployed.client("lambda"), function, payload)


def run_compaction(deployed: Deployed, topic: str) -> tuple[dict[str, Any], list[str]]:
    """The deployed planner, then its workers until every object of ``topic`` has a compacted name."""
    return maintenance.compact(
        lambda_client=deployed.client("lambda"),
        sqs=deployed.client("sqs"),
        s3=deployed.client("s3"),
        outputs=deployed.outputs,
        topic=topic,
    )
