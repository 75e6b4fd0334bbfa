"""Measure compaction: block copy against re-encode, on an archive the pipeline writes into in-process S3 (moto).

    python -m archive_ops.compaction_bench [--objects 100] [--records-per-object 1000] [--codec zstandard] [--repeat 3]

Prints one JSON line per (codec, method) with the time to build the merged object ("build"), to read it back and
verify it ("verify": block bytes for copy, decoded offsets for re-encode and copy+verify-offsets) and the whole
merge: GET the inputs, build, PUT, verify, delete ("total"), plus input and output sizes. S3 is moto in-process, so
"total" is CPU-bound and excludes network time. Needs requirements-dev (moto).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from typing import Any

from archiver.decoding import to_event_record


def _event(topic: str, first: int, count: int, rng: random.Random) -> dict[str, Any]:
    """One Lambda batch of ~600-byte JSON orders, keyed, with a header: compresses like real traffic."""
    records = []
    for offset in range(first, first + count):
        value = {
            "order_id": f"{rng.getrandbits(64):016x}",
            "customer": f"c-{rng.randrange(100_000)}",
            "country": rng.choice(["DE", "FR", "IT", "ES", "NL", "PL"]),
            "amount": round(rng.uniform(1, 500), 2),
            "items": [{"sku": f"sku-{rng.randrange(10_000)}", "qty": rng.randrange(1, 5)} for _ in range(4)],
            "note": rng.choice(["", "gift", "express delivery please", "leave at the door"]) * 3,
        }
        records.append(
            to_event_record(
                {
                    "topic": topic,
                    "partition": 0,
                    "offset": offset,
                    "timestamp": 1_714_567_890_123 + offset,
                    "timestamp_type": "CREATE_TIME",
                    "key": f"order-{offset}".encode(),
                    "value": json.dumps(value).encode(),
                    "headers": [{"key": "trace-id", "value": f"{rng.getrandbits(64):016x}".encode()}],
                }
            )
        )
    return {"eventSource": "SelfManagedKafka", "records": {f"{topic}-0": records}}


def run(objects: int, per_object: int, codec: str, repeat: int) -> list[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    from archive_ops.archive_index import group_objects, list_archive
    from archive_ops.compact import CompactionConfig, Compactor, MergeResult, Method
    from archiver.pipeline import Archiver
    from archiver.settings import Settings

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        os.environ.pop(name, None)  # in-process moto only: never a real endpoint
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    results = []
    with mock_aws():
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        s3.create_bucket(Bucket="bench")
        queue = sqs.create_queue(QueueName="bench")["QueueUrl"]
        archiver = Archiver(
            Settings(archive_bucket="bench", dead_letter_queue_url=queue, codec=codec),  # type: ignore[arg-type]
            s3_client=s3,
            sqs_client=sqs,
        )
        rng = random.Random(42)  # noqa: S311 - test data, not security
        for index in range(objects):
            archiver.archive(_event("bench", index * per_object, per_object, rng))
        originals = {
            item.key: s3.get_object(Bucket="bench", Key=item.key)["Body"].read()
            for item in list_archive(s3, "bench", "topics/")
        }
        variants: tuple[tuple[Method, bool], ...] = (("copy", False), ("copy", True), ("reencode", False))
        for method, verify_offsets in variants:
            timings: dict[str, list[float]] = {"build": [], "verify": [], "total": []}
            merge = None
            for _ in range(repeat):
                for key in [item.key for item in list_archive(s3, "bench", "topics/")]:
                    s3.delete_object(Bucket="bench", Key=key)
                for key, body in originals.items():
                    s3.put_object(Bucket="bench", Key=key, Body=body)
                config = CompactionConfig(bucket="bench", method=method, verify_offsets=verify_offsets)
                compactor = Compactor(s3, config)
                ((group, members),) = group_objects(list_archive(s3, "bench", "topics/")).items()
                started = time.perf_counter()
                merge = compactor.merge(group, members)
                timings["total"].append(time.perf_counter() - started)
                assert isinstance(merge, MergeResult)
                timings["build"].append(merge.build_seconds)
                timings["verify"].append(merge.verify_seconds)
            assert isinstance(merge, MergeResult)
            results.append(
                {
                    "codec": codec,
                    "method": method + ("+verify-offsets" if verify_offsets else ""),
                    "inputs": merge.inputs,
                    "records": merge.records,
                    "bytes_in": merge.bytes_in,
                    "bytes_out": merge.bytes_out,
                    **{f"{name}_s": round(statistics.median(values), 3) for name, values in timings.items()},
                    "build_mb_per_s": round(merge.bytes_in / 1e6 / statistics.median(timings["build"]), 1),
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m archive_ops.compaction_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--records-per-object", type=int, default=1000)
    parser.add_argument("--codec", action="append", help="repeatable; default zstandard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for codec in args.codec or ["zstandard"]:
        for row in run(args.objects, args.records_per_object, codec, args.repeat):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
