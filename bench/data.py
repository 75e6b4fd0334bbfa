"""Realistic Kafka ESM batches for the benchmarks: JSON order events, as full as AWS delivers them.

A Kafka event source mapping invokes the function with at most ``BatchSize`` records (10,000 at most) and at most
6 MB of invocation payload, whichever is reached first. Values are base64 in that payload, so a batch of 1 KB
values holds about 4,000 records and a batch of 10 KB values about 430. ``full_batch`` builds exactly that.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from tests.kafka_events import BASE_TIMESTAMP, kafka_event, kafka_record

MAX_RECORDS = 10_000  # the ESM's largest BatchSize
MAX_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
TOPIC = "orders"
PARTITIONS = 6
COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES", "IT", "PL")
_WORDS = (
    "express",
    "standard",
    "gift",
    "fragile",
    "return",
    "priority",
    "warehouse",
    "berlin",
    "paris",
    "london",
    "retail",
    "online",
    "voucher",
    "loyalty",
    "card",
    "paypal",
    "invoice",
    "bundle",
    "discount",
    "seasonal",
    "refurbished",
    "premium",
    "basic",
)


@dataclass(frozen=True)
class Batch:
    """One invocation event and what it holds."""

    value_size: int
    event: dict[str, Any]
    records: int
    payload_bytes: int  # decoded key + value + header bytes: what gets archived
    event_bytes: int  # the invocation payload as JSON: what the ESM sends


def order_value(rnd: random.Random, order_id: int, size: int) -> bytes:
    """A JSON order of about ``size`` bytes: realistic field names, numbers, text and a list of line items."""
    document: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": f"c-{rnd.randrange(10**6):06d}",
        "country": rnd.choice(COUNTRIES),
        "created_at": f"2024-05-01T12:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}.{rnd.randrange(1000):03d}Z",
        "currency": "EUR",
        "amount": round(rnd.uniform(1, 5000), 2),
        "status": rnd.choice(("NEW", "PAID", "SHIPPED", "CANCELLED")),
        "items": [],
    }
    text = json.dumps(document, separators=(",", ":"))
    while len(text) < size:
        document["items"].append(
            {
                "sku": f"SKU-{rnd.randrange(10**5):05d}",
                "qty": rnd.randint(1, 9),
                "price": round(rnd.uniform(1, 500), 2),
                "note": " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(1, 6))),
            }
        )
        text = json.dumps(document, separators=(",", ":"))
    return text.encode()


def full_batch(
    value_size: int, *, seed: int = 7, max_records: int = MAX_RECORDS, partitions: int = PARTITIONS
) -> Batch:
    """As many records as one invocation can carry (10,000 or 6 MB of event), spread over ``partitions``."""
    rnd = random.Random(seed)
    records: list[dict[str, Any]] = []
    event_bytes = 200  # the envelope around the records
    payload = 0
    for index in range(max_records):
        partition = index % partitions
        offset = 1_000_000 + index // partitions
        value = order_value(rnd, index, value_size)
        key = f"customer-{rnd.randrange(10**6):06d}".encode()
        headers = [("traceparent", f"00-{rnd.getrandbits(128):032x}-{rnd.getrandbits(64):016x}-01".encode())]
        # Timestamps over about 3 hours, so the time partitioner writes several hour paths per partition.
        record = kafka_record(
            TOPIC, partition, offset, value=value, key=key, headers=headers, timestamp=BASE_TIMESTAMP + index * 1_000
        )
        size = len(json.dumps(record, separators=(",", ":"))) + 2
        if event_bytes + size > MAX_EVENT_BYTES:
            break
        event_bytes += size
        payload += len(value) + len(key) + sum(len(name) + len(data) for name, data in headers)
        records.append(record)
    event = kafka_event(records)
    # Round-trip through JSON so the event is exactly what the runtime hands the handler (fresh str objects).
    text = json.dumps(event, separators=(",", ":"))
    return Batch(
        value_size=value_size,
        event=json.loads(text),
        records=len(records),
        payload_bytes=payload,
        event_bytes=len(text),
    )
