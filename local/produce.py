"""A realistic sample stream: orders keyed by customer, across several partitions, with tombstones and poison records.

    python -m local.produce --count 600                  # into the deployed config's first topic
    python -m local.produce --topic orders --partitions 3 --poison 3 --tombstones 5

* Values are JSON orders; keys are customer ids, so one customer's orders share a partition and stay in order.
* Tombstones are records with a key and a null value (a deleted customer), as on a compacted topic.
* Poison records carry the header ``x-archiver-test-poison``; the emulator's ``--poison-header`` test hook sends them
  with a value that is not base64, which the function must dead-letter. A real broker cannot deliver such a record,
  so the hook is how the demo and the end-to-end tests exercise that path.

Prints (or writes with ``--manifest``) every produced record's coordinates as JSON, for the tests and the demo.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

POISON_HEADER = "x-archiver-test-poison"
PRODUCTS = [("sku-espresso", 3.2), ("sku-croissant", 2.4), ("sku-bagel", 2.9), ("sku-tea", 2.1), ("sku-muffin", 3.0)]


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int
    kind: str  # "order" | "tombstone" | "poison"
    key: str | None
    value: str | None  # the UTF-8 value as produced (None for a tombstone)


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    if topic in admin.list_topics(timeout=10).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        try:
            future.result(timeout=15)
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise


def order(rng: random.Random, number: int, customer: str, at: datetime) -> dict[str, Any]:
    picked = [(sku, price, rng.randint(1, 3)) for sku, price in rng.sample(PRODUCTS, rng.randint(1, 3))]
    lines = [{"sku": sku, "quantity": quantity, "unitPrice": price} for sku, price, quantity in picked]
    return {
        "orderId": f"ord-{number:06d}",
        "customerId": customer,
        "createdAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "currency": "EUR",
        "lines": lines,
        "total": round(sum(quantity * price for _, price, quantity in picked), 2),
        "store": rng.choice(["berlin-1", "lisbon-2", "dublin-1"]),
    }


def produce_orders(
    bootstrap: str,
    topic: str,
    *,
    count: int = 600,
    partitions: int = 3,
    customers: int = 40,
    tombstones: int = 5,
    poison: int = 3,
    seed: int = 7,
) -> list[Produced]:
    """Produce ``count`` records (orders, with ``tombstones`` and ``poison`` among them); return their coordinates."""
    ensure_topic(bootstrap, topic, partitions)
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    special = rng.sample(range(count), min(count, tombstones + poison))
    tombstone_at, poison_at = set(special[:tombstones]), set(special[tombstones:])
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": False, "acks": "all", "log_level": 3}
    )
    produced: list[Produced] = []
    errors: list[str] = []
    start = datetime.now(tz=UTC) - timedelta(seconds=count)

    def delivered(kind: str, key: str | None, value: str | None) -> Any:
        def callback(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
                return
            produced.append(Produced(topic, message.partition(), message.offset(), kind, key, value))

        return callback

    for number in range(count):
        customer = f"customer-{rng.randrange(customers):04d}"
        at = start + timedelta(seconds=number)
        headers: list[tuple[str, str | bytes | None]] = [
            ("content-type", b"application/json"),
            ("producer", b"local.produce"),
        ]
        kind = "order"
        value: str | None = json.dumps(order(rng, number, customer, at), separators=(",", ":"))
        if number in tombstone_at:
            kind, value = "tombstone", None
        elif number in poison_at:
            kind = "poison"
            headers.append((POISON_HEADER, b"1"))
        producer.produce(
            topic,
            key=customer.encode(),
            value=value.encode() if value is not None else None,
            headers=headers,
            timestamp=int(at.timestamp() * 1000),
            on_delivery=delivered(kind, customer, value),
        )
        producer.poll(0)
    remaining = producer.flush(30)
    if remaining or errors:
        raise RuntimeError(f"{remaining} record(s) not delivered; errors: {errors[:3]}")
    return sorted(produced, key=lambda p: (p.partition, p.offset))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.produce", description=__doc__.split("\n\n")[0])
    p.add_argument("--instance", default=None)
    p.add_argument("--bootstrap-servers", default=None, help="default: $KAFKA_BOOTSTRAP_SERVERS or the local stack's")
    p.add_argument("--topic", default=None, help="default: the deployed config's first eventSource topic")
    p.add_argument("--count", type=int, default=600)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--tombstones", type=int, default=5)
    p.add_argument("--poison", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--manifest", type=Path, default=None, help="write the produced coordinates here (JSON)")
    args = p.parse_args(argv)

    from local import deploy, stack

    bootstrap = (
        args.bootstrap_servers
        or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        or stack.current(args.instance).endpoints.kafka_bootstrap
    )
    topic = args.topic or deploy.load_outputs(args.instance)["event_source"]["topics"][0]
    produced = produce_orders(
        bootstrap,
        topic,
        count=args.count,
        partitions=args.partitions,
        tombstones=args.tombstones,
        poison=args.poison,
        seed=args.seed,
    )
    document = [asdict(item) for item in produced]
    if args.manifest:
        args.manifest.write_text(json.dumps(document) + "\n")
    kinds = {kind: sum(1 for item in produced if item.kind == kind) for kind in ("order", "tombstone", "poison")}
    print(json.dumps({"topic": topic, "produced": len(produced), **kinds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
