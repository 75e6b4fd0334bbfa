"""Typed values built to hurt: depth, sizes, numbers and text that fastavro or json alone cannot survive.

Each of these used to fail the whole batch (RecursionError, OverflowError, UnicodeEncodeError at encode time) or
take the process down (a segmentation fault in fastavro's compiled reader, a list of 2**62 items). Now each such
value is dead-lettered with a reason, the rest of the batch is archived, and what is archived is readable by
fastavro and Apache avro.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archiver.encoding import encode_long
from archiver.jsontext import MAX_NESTING
from archiver.values.avro_bounds import MAX_EMPTY_ITEMS
from archiver.values.registry_avro import MAX_LOOKUPS_PER_BATCH
from tests.avro_readers import millis, read_both
from tests.kafka_events import kafka_event, kafka_record
from tests.typed.conftest import Registry, TypedAws, confluent_value, make_archiver, write_schema
from tests.typed.schemas import ORDER_V1, order

ROOT = Path(__file__).resolve().parents[2]
LINKED = {
    "type": "record",
    "name": "Node",
    "namespace": "chain",
    "fields": [{"name": "label", "type": "string"}, {"name": "next", "type": ["null", "Node"]}],
}
EMPTY_ITEMS = {
    "type": "record",
    "name": "Ticks",
    "fields": [{"name": "ticks", "type": {"type": "array", "items": "null"}}],
}


def chain(depth: int) -> dict[str, Any] | None:
    node: dict[str, Any] | None = None
    for level in range(depth):
        node = {"label": str(level), "next": node}
    return node


def linked_body(depth: int) -> bytes:
    """A Node list ``depth`` long, in Avro binary: label "", then union branch 1 (Node) ... and a final null."""
    return b"\x00\x02" * (depth - 1) + b"\x00\x00"


def decode_in_a_child(schema: Any, body: bytes) -> subprocess.CompletedProcess[str]:
    """Decode ``body`` with the avro-confluent decoder in a fresh process (2 GB address space, 60 s), so a crash
    or a runaway allocation fails this test instead of killing pytest."""
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        sys.path[:0] = [{str(ROOT / "functions" / "archiver")!r}]
        from archiver.errors import ValueDecodeError
        from archiver.values.confluent import ConfluentAvroDecoder

        class Registry:
            def schema(self, schema_id):
                return {schema!r}

        try:
            ConfluentAvroDecoder(Registry()).decode(bytes.fromhex({(b"\x00\x00\x00\x00\x07" + body).hex()!r}), None)
            print("decoded")
        except ValueDecodeError as error:
            print("ValueDecodeError:", error)
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)


def test_a_deeply_recursive_avro_value_is_rejected_not_a_segfault() -> None:
    # 20 KB: fastavro's reader recursed 10,000 levels in C and the process died with SIGSEGV.
    result = decode_in_a_child(LINKED, linked_body(10_000))
    assert result.returncode == 0, f"the decoder process died: {result.returncode} {result.stderr[-500:]}"
    assert f"deeper than {MAX_NESTING} levels" in result.stdout


def test_a_billion_zero_byte_items_are_rejected_without_building_them() -> None:
    body = encode_long(2**62) + b"\x00"  # ten bytes that claim 2**62 nulls
    result = decode_in_a_child(EMPTY_ITEMS, body)
    assert result.returncode == 0, f"the decoder process died: {result.returncode} {result.stderr[-500:]}"
    assert f"more than {MAX_EMPTY_ITEMS:,} array items of zero bytes" in result.stdout


def test_hostile_avro_values_are_dead_lettered_and_the_rest_archived(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    registry.register(1, LINKED)
    registry.register(2, EMPTY_ITEMS)
    header = b"\x00" + (1).to_bytes(4, "big")
    values = {
        0: confluent_value(1, LINKED, chain(MAX_NESTING)),  # as deep as allowed: archived
        1: header + linked_body(MAX_NESTING + 1),
        2: header + linked_body(100_000),
        3: b"\x00" + (2).to_bytes(4, "big") + encode_long(-(2**62)) + encode_long(1) + b"\x00",  # negative count
        4: confluent_value(2, EMPTY_ITEMS, {"ticks": [None] * 1_000}),  # a thousand nulls is fine
        5: header + b"\x00\x04",  # union branch 2 of 2
    }
    event = kafka_event([kafka_record("chains", 0, n, value=value) for n, value in values.items()])
    formats = {"chains": {"format": "avro-confluent", "registryUrl": registry.url}}

    summary = make_archiver(aws, formats, schemas_dir).archive(event)

    letters = {letter["offset"]: letter for letter in aws.dead_letters()}
    assert sorted(letters) == [1, 2, 3, 5]
    assert {letter["reason"] for letter in letters.values()} == {"undecodable-value"}
    assert "deeper than" in letters[2]["errorMessage"]
    assert "union branch 2 of 2" in letters[5]["errorMessage"]
    archived = [record for key in summary.keys_written for record in read_both(aws.body(key))]
    assert sorted(r["offset"] for r in archived) == [0, 4]
    assert next(r["value"] for r in archived if r["offset"] == 0) == chain(MAX_NESTING)


def test_hostile_json_values_are_dead_lettered_and_the_rest_archived(aws: TypedAws, schemas_dir: Path) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    write_schema(schemas_dir, "chains.avsc", LINKED)
    nested = json.dumps(chain(MAX_NESTING - 1)).encode()
    values = {
        ("orders", 0): b"[" * 10_000 + b"]" * 10_000,  # RecursionError in json.loads: the whole batch failed
        ("orders", 1): json.dumps(order(1, amount=10**400)).encode(),  # validates as a double, cannot be written
        ("orders", 2): json.dumps(order(2, country="\ud800")).encode(),  # a lone surrogate: not Unicode text
        ("orders", 3): json.dumps(order(3, country="\u00b2\U0001f600")).encode(),  # real Unicode: archived
        ("orders", 4): json.dumps(order(4)).replace('"DE"', '"\\ud83d\\ude00"').encode(),  # an escaped pair: fine
        ("orders", 5): json.dumps(order(5, country="x" * 1_000_000)).encode(),  # a megabyte string: archived
        ("chains", 6): nested,  # a recursive type within the nesting limit: archived
        ("chains", 7): json.dumps(chain(MAX_NESTING + 10)).encode(),
    }
    event = kafka_event([kafka_record(topic, 0, n, value=value) for (topic, n), value in values.items()])
    formats = {topic: {"format": "json", "schema": f"{topic}.avsc"} for topic in ("orders", "chains")}

    summary = make_archiver(aws, formats, schemas_dir).archive(event)

    letters = {letter["offset"]: letter for letter in aws.dead_letters()}
    assert sorted(letters) == [0, 1, 2, 7]
    assert "nests deeper than" in letters[0]["errorMessage"]
    assert "OverflowError" in letters[1]["errorMessage"]
    assert "surrogate" in letters[2]["errorMessage"]
    for offset, letter in letters.items():
        topic = "chains" if offset == 7 else "orders"
        assert letter["record"] == next(r for r in event["records"][f"{topic}-0"] if r["offset"] == offset)
    archived = {r["offset"]: r for key in summary.keys_written for r in read_both(aws.body(key))}
    assert sorted(archived) == [3, 4, 5, 6]
    assert archived[3]["value"]["country"] == "\u00b2\U0001f600"
    assert archived[4]["value"]["country"] == "\U0001f600"
    assert archived[6]["value"] == json.loads(nested)


@pytest.mark.parametrize("partitioner", ["default", "time", "field"])
def test_typed_archives_follow_the_envelope_timestamp_policy(
    aws: TypedAws, schemas_dir: Path, partitioner: str
) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    stamps = [1_714_567_890_123_456, 1_714_567_890_123, -(2**63) + 1]
    records = [
        kafka_record("orders", 0, n, value=json.dumps(order(n)).encode(), timestamp=s) for n, s in enumerate(stamps)
    ]
    field = {"partition_field": "country"} if partitioner == "field" else {}
    formats = {"orders": {"format": "json", "schema": "orders.avsc"}}

    summary = make_archiver(aws, formats, schemas_dir, partitioner=partitioner, **field).archive(kafka_event(records))

    assert aws.dead_letters() == []
    archived = {r["offset"]: r for key in summary.keys_written for r in read_both(aws.body(key))}
    assert [(millis(archived[n]["timestamp"]), archived[n]["timestamp_raw"]) for n in range(3)] == [
        (None, stamps[0]),
        (stamps[1], None),
        (None, stamps[2]),
    ]


@pytest.mark.parametrize(
    "schema_id",
    ["\u00b2", "9" * 5_000, ["1"], {"id": 1}, True, json.loads("[" * 5_000 + "]" * 5_000)],
    ids=["superscript-two", "5000-digits", "list", "object", "true", "deep-list"],
)
def test_a_schema_id_from_the_esm_integration_that_is_no_id_is_dead_lettered(
    aws: TypedAws, registry: Registry, schemas_dir: Path, schema_id: object
) -> None:
    # "²" passed str.isdigit() and failed int(); a list was turned into its repr and sent to the registry.
    registry.register(1, ORDER_V1)
    record = kafka_record("orders", 0, 0, value=confluent_value(1, ORDER_V1, order(0)))
    record["valueSchemaMetadata"] = {"schemaId": schema_id, "dataFormat": "AVRO"}
    formats = {"orders": {"format": "avro-confluent", "registryUrl": registry.url}}

    make_archiver(aws, formats, schemas_dir).archive(kafka_event([record]))

    (letter,) = aws.dead_letters()
    assert (letter["reason"], letter["record"]) == ("undecodable-value", record)
    assert registry.requests == []


def test_values_with_random_schema_ids_cost_a_bounded_number_of_registry_calls(
    aws: TypedAws, registry: Registry, schemas_dir: Path
) -> None:
    # A producer writing plain bytes into a typed topic: every value names another schema id. One registry call per
    # value would outlast the invocation (or be throttled) and the batch would fail again on every retry.
    registry.register(7, ORDER_V1)
    values = [confluent_value(7, ORDER_V1, order(0))]
    values += [confluent_value(1_000 + n, ORDER_V1, order(n)) for n in range(1, 200)]
    values.append(confluent_value(7, ORDER_V1, order(200)))  # a known id still decodes after the budget is spent
    event = kafka_event([kafka_record("payments", 0, n, value=value) for n, value in enumerate(values)])
    archiver = make_archiver(aws, {"payments": {"format": "avro-confluent", "registryUrl": registry.url}}, schemas_dir)

    summary = archiver.archive(event)

    assert len(registry.requests) == MAX_LOOKUPS_PER_BATCH
    reasons = Counter(letter["reason"] for letter in aws.dead_letters())
    assert reasons == {"unknown-schema": MAX_LOOKUPS_PER_BATCH - 1, "schema-lookup-limit": 199 - 15}
    assert summary.records_archived == 2
    archiver.archive(kafka_event([kafka_record("payments", 0, 201, value=confluent_value(9_999, ORDER_V1, order(1)))]))
    assert len(registry.requests) == MAX_LOOKUPS_PER_BATCH + 1  # the next batch has its own budget
