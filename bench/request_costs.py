"""S3 request costs per TB archived: the function's writes, the deployed compaction, and the deployed audit.

    python -m bench.request_costs            # the markdown table in docs/benchmarks.md ("Request costs per TB")

Arithmetic on stated assumptions, not a measurement of AWS: requests are counted from what the code does (one PUT
per object the function writes; per compaction input a GET and a HEAD before its delete; per merged object a
conditional PUT and a GET to verify it; per audit run a LIST of the archive and a GET of each object it has not seen).
The sizes come from ``make bench`` (1 KB JSON values, zstandard, full batches). tests/ops/test_request_costs.py keeps
docs/benchmarks.md equal to what this prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TB = 10**12  # bytes of decoded payload (keys, values, headers)
# make bench, 1 KB values, zstandard, full 6 MB events: 4,054,562 payload bytes per batch, stored at 0.235 of it.
PAYLOAD_PER_BATCH = 4_054_562
STORED_RATIO = 0.235
TARGET_BYTES = 128 * 1024 * 1024  # maintenance.compaction.targetSizeMiB
# us-east-1 S3 Standard list prices (https://aws.amazon.com/s3/pricing/, read 2026-11-26): PUT, COPY, POST, LIST per
# 1,000; GET, SELECT and all other requests (HEAD included) per 1,000. DELETE is free; DeleteObjects is a POST,
# counted here at the PUT price to be safe.
PUT_USD = 0.005 / 1000
GET_USD = 0.0004 / 1000
LIST_USD = 0.005 / 1000
PARTITIONS_PER_BATCH = (6, 100, 500)


@dataclass(frozen=True)
class Row:
    partitions: int
    objects_written: float  # by the function, per TB
    object_bytes: float  # average stored size of those objects
    write_puts_usd: float
    compacted_objects: float
    compaction_gets: float  # GET of each input + HEAD before deleting it + GET to verify each output
    compaction_puts: float  # each output + DeleteObjects batches
    compaction_usd: float
    audit_gets: float  # each compacted object once (the function's recent objects are left to settle)
    audit_usd: float

    @property
    def total_usd(self) -> float:
        return self.write_puts_usd + self.compaction_usd + self.audit_usd


def row(partitions: int) -> Row:
    """Per TB, with ``partitions`` topic-partitions in every batch (the default partitioner: one object each)."""
    batches = TB / PAYLOAD_PER_BATCH
    written = batches * partitions
    stored = TB * STORED_RATIO
    outputs = math.ceil(stored / TARGET_BYTES)
    gets = 2 * written + outputs
    puts = outputs + math.ceil(written / 1000)
    return Row(
        partitions=partitions,
        objects_written=written,
        object_bytes=stored / written,
        write_puts_usd=written * PUT_USD,
        compacted_objects=outputs,
        compaction_gets=gets,
        compaction_puts=puts,
        compaction_usd=gets * GET_USD + puts * PUT_USD,
        audit_gets=outputs,
        audit_usd=outputs * GET_USD,
    )


def listing_usd_per_run(objects: int) -> float:
    """One LIST of an archive of ``objects`` objects (1,000 keys per ListObjectsV2 page)."""
    return math.ceil(objects / 1000) * LIST_USD


def table() -> str:
    lines = [
        "| partitions per batch | objects written per TB (avg size) | PUTs by the function | compaction: GET+HEAD / "
        "PUT | compaction $ | objects after | audit GETs | audit $ | total $/TB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in map(row, PARTITIONS_PER_BATCH):
        lines.append(
            f"| {item.partitions} | {item.objects_written:,.0f} ({item.object_bytes / 1024:,.0f} KiB) | "
            f"${item.write_puts_usd:,.2f} | {item.compaction_gets:,.0f} / {item.compaction_puts:,.0f} | "
            f"${item.compaction_usd:,.2f} | {item.compacted_objects:,.0f} | {item.audit_gets:,.0f} | "
            f"${item.audit_usd:,.4f} | ${item.total_usd:,.2f} |"
        )
    return "\n".join(lines)


def audit_read_rate(records: int = 20_000) -> float:
    """Records per second ``archiver.reading.read_offsets`` reads from one zstandard object of ~1 KB JSON values:
    the audit's CPU per object it reads (measured here, best of 3)."""
    import json
    import random
    import time

    from archiver.encoding import encode_records
    from archiver.reading import read_offsets

    rng = random.Random(7)
    words = ["order", "customer", "amount", "country", "DE", "FR", "sku", "note"]
    envelopes = [
        {
            "topic": "orders",
            "partition": 0,
            "offset": offset,
            "timestamp": 1_714_567_890_123 + offset,
            "timestamp_type": "CREATE_TIME",
            "key": f"order-{offset}".encode(),
            "value": json.dumps({w: rng.choice(words) + str(rng.random()) for w in words * 3}).encode(),
            "headers": [],
        }
        for offset in range(records)
    ]
    body = encode_records(envelopes, codec="zstandard", key="bench")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        read_offsets(body)
        best = min(best, time.perf_counter() - started)
    return records / best


def main() -> int:
    print(table())
    print()
    print(f"The audit reads offsets at {audit_read_rate():,.0f} records/s on this machine (1 KB values, zstandard).")
    print()
    print(
        f"Per run, the planner and the audit each LIST the archive: ${listing_usd_per_run(1_000_000):.3f} per "
        "million objects; hourly, for an archive of 1 PB compacted into 128 MiB objects (about 1.75 million), "
        f"${listing_usd_per_run(1_750_000) * 2 * 730:,.0f} a month for both."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
