"""End to end against LocalStack: the archiver with real boto3 clients, its PUTs going over HTTP to LocalStack's S3.

Starts its own local stack instance (``python -m local.stack up --instance bench``, so it never touches another
engineer's instance), archives full batches with the handler's SDK configuration, reads every object back to check
that it holds the batch's records, and stops what it started (``down --instance bench``, by recorded PID).
Wall time is reported here, since waiting on the network is the point; the in-memory run of the same batch is
interleaved with it so that the difference is the cost of the PUTs.

    python -m bench.e2e          # prints one JSON line
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.config import Config

from archiver.parallel import parallel_requests
from archiver.pipeline import Archiver
from archiver.settings import DEFAULT_CODEC, Settings
from bench import data, variants
from bench.timing import interleaved

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "bench"
QUEUE = "bench-dlq"
# The handler's SDK configuration and request pool (functions/archiver/handler.py), at the stack's default memory.
PARALLEL_REQUESTS = parallel_requests()
SDK_CONFIG = Config(retries={"total_max_attempts": 9, "mode": "standard"}, max_pool_connections=PARALLEL_REQUESTS)


def _stack(*args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "local.stack", *args, "--instance", INSTANCE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"local.stack {' '.join(args)} failed: {(result.stderr or result.stdout).strip()[-600:]}")
    return result.stdout


def _endpoints() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _stack("env", timeout=60).splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value
    return env


def measure(rounds: int = 5, sizes: tuple[int, ...] = (100, 1_000, 10_000)) -> dict[str, Any]:
    try:
        _stack("up")
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
        return {"skipped": f"the local stack did not start: {error}"}
    try:
        return _measure(_endpoints(), rounds, sizes)
    finally:
        _stack("down", timeout=120)


def _measure(env: dict[str, str], rounds: int, sizes: tuple[int, ...]) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    endpoint = env["AWS_ENDPOINT_URL"]
    s3 = session.client("s3", endpoint_url=endpoint, config=SDK_CONFIG)
    sqs = session.client("sqs", endpoint_url=endpoint, config=SDK_CONFIG)
    s3.create_bucket(Bucket=variants.BUCKET)
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    settings = Settings(archive_bucket=variants.BUCKET, dead_letter_queue_url=queue_url, codec=DEFAULT_CODEC)
    archiver = Archiver(settings, s3_client=s3, sqs_client=sqs, parallel=PARALLEL_REQUESTS)

    rows = []
    run_id = uuid.uuid4().hex[:8]
    for size in sizes:
        batch = data.full_batch(size)
        # Every archive call gets its own topic name: keys are named by offsets and created only if absent, so the
        # same batch again would time the retry path (412, GET, compare) instead of the writes, and objects left by
        # an earlier run of this instance would be read back as this one's.
        events = iter([_renamed(batch.event, f"{data.TOPIC}-{run_id}-{size}-{n}") for n in range(rounds + 2)])
        event = next(events)
        summary = archiver.archive(event)
        bodies = [s3.get_object(Bucket=variants.BUCKET, Key=key)["Body"].read() for key in sorted(summary.keys_written)]
        in_memory = variants.ours(DEFAULT_CODEC)
        assert variants.decoded_records(bodies) == variants.decoded_records(in_memory(event)), (
            "what LocalStack stores differs from what the archiver encoded"
        )
        assert summary.records_archived == batch.records, "every record of the batch must be written this time"

        def to_localstack(events: Iterator[dict[str, Any]] = events) -> object:
            return archiver.archive(next(events))

        def to_memory(event: dict[str, Any] = batch.event, run: variants.Variant = in_memory) -> object:
            return run(event)

        timings = interleaved({"localstack": to_localstack, "in_memory": to_memory}, rounds=rounds)
        local, memory = timings["localstack"], timings["in_memory"]
        rows.append(
            {
                "value_size": size,
                "records": batch.records,
                "payload_bytes": batch.payload_bytes,
                "objects": len(bodies),
                "codec": DEFAULT_CODEC,
                "localstack_best_wall_s": local.best_wall,
                "localstack_median_wall_s": local.median_wall,
                "localstack_best_cpu_s": local.best,
                "in_memory_best_wall_s": memory.best_wall,
                "records_per_s": batch.records / local.best_wall,
                "payload_mb_per_s": batch.payload_bytes / local.best_wall / 1e6,
                "put_overhead_s": local.best_wall - memory.best_wall,
            }
        )
        print(
            f"  {size:>6} B values: LocalStack {local.best_wall * 1e3:.0f} ms "
            f"(in memory {memory.best_wall * 1e3:.0f} ms), {len(bodies)} objects"
        )
    return {"endpoint": "LocalStack S3/SQS on 127.0.0.1 (python -m local.stack, instance bench)", "rows": rows}


def _renamed(event: dict[str, Any], topic: str) -> dict[str, Any]:
    """A copy of ``event`` with every record's topic renamed (keys of the records map too)."""
    records: dict[str, list[dict[str, Any]]] = {}
    for batch in event["records"].values():
        for record in batch:
            records.setdefault(f"{topic}-{record['partition']}", []).append({**record, "topic": topic})
    return {**event, "records": records}


if __name__ == "__main__":
    os.chdir(ROOT)
    print(json.dumps(measure()))
