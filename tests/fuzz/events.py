"""Kafka ESM events for the fuzz suite: well-formed ones shaped like AWS's, then mutated by a seeded generator.

``fuzz_event(rnd)`` returns the JSON *text* of one event, as the Lambda runtime receives it; the harness parses
it with ``json.loads``, exactly what the runtime does before calling the handler. Mutations cover what issue 11
lists: wrong types, missing and extra fields, extreme numbers, deep nesting, invalid base64, unicode (lone
surrogates included), huge values, malformed headers and map keys, and, rarely, a malformed event.
"""

from __future__ import annotations

import base64
import io
import json
import random
import string
from collections.abc import Callable
from typing import Any

import fastavro

from archiver.encoding import TIMESTAMP_MILLIS_MAX, TIMESTAMP_MILLIS_MIN, encode_long
from tests.typed.schemas import ORDER_V1, order

TYPED_JSON = "typed-json"  # json format, ORDER_V1
TYPED_CHAIN = "typed-chain"  # json format, a recursive schema
TYPED_CONFLUENT = "typed-confluent"  # avro-confluent against the fuzz registry
LINKED: dict[str, Any] = {
    "type": "record",
    "name": "Node",
    "namespace": "chain",
    "fields": [{"name": "label", "type": "string"}, {"name": "next", "type": ["null", "Node"]}],
}
EMPTY_ITEMS: dict[str, Any] = {
    "type": "record",
    "name": "Ticks",
    "fields": [{"name": "ticks", "type": {"type": "array", "items": "null"}}],
}
REGISTERED = {1: ORDER_V1, 2: LINKED, 3: EMPTY_ITEMS}  # schema ids the fuzz registry knows; others are unknown
_PARSED = {schema_id: fastavro.parse_schema(schema) for schema_id, schema in REGISTERED.items()}

RAW_TOPICS = ["orders", "orders.eu-west-1", "a-b.c_d", "t" * 249, "\u00fcml\u00e4ut", "../x", "a+b/c", ".", "x" * 400]
TOPICS = [*RAW_TOPICS, "emoji-\U0001f600", TYPED_JSON, TYPED_CHAIN, TYPED_CONFLUENT]
SOURCES = ["aws:kafka", "SelfManagedKafka", "aws:SelfManagedKafka"]
MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/fuzz/751d2973-a626-431c-9d4e-d7975eb44dd7-2"
FIELDS = ["topic", "partition", "offset", "timestamp", "timestampType", "key", "value", "headers"]
MAX_JSON_DIGITS = 4_000  # json.loads refuses integers of more than 4,300 digits, so the runtime never delivers one


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def nested(rnd: random.Random, depth: int) -> Any:
    """Lists and objects nested ``depth`` deep (kept below what json.loads itself can parse)."""
    document: Any = rnd.choice([[], {}, 1, "x", None])
    for _ in range(depth):
        document = [document] if rnd.random() < 0.5 else {"k": document}
    return document


def unicode_text(rnd: random.Random, length: int) -> str:
    alphabet = string.ascii_letters + "\u00e9\u00b2\u0663\u4e2d\U0001f600\u200b\t\n\x00\x7f\ufeff\ufffd"
    return "".join(rnd.choice(alphabet) for _ in range(length))


def huge_int(rnd: random.Random) -> int:
    return int(rnd.choice([1, -1]) * 10 ** rnd.randrange(19, MAX_JSON_DIGITS))


def hostile_value(rnd: random.Random) -> Any:
    """Something a field should never hold: wrong types, extremes, deep nesting, bad text."""
    options: list[Callable[[], Any]] = [
        lambda: None,
        lambda: rnd.choice([True, False]),
        lambda: rnd.choice([0, -1, 1, 255, 256, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64]),
        lambda: huge_int(rnd),
        lambda: rnd.choice([1.5, -0.0, 1e308, -1e308, 5e-324, float("inf"), float("-inf"), float("nan")]),
        lambda: rnd.choice(["", "x", "AQ==", "!!", "\ud800", "\udfff\ud800", "t-\u00b2", "=" * 4]),
        lambda: unicode_text(rnd, rnd.randrange(1, 40)),
        lambda: "A" * rnd.choice([10_000, 10_000, 10_000, 300_000]),
        lambda: [rnd.randrange(-5, 300) for _ in range(rnd.randrange(0, 6))],
        lambda: [rnd.choice([True, False, 0, 1]) for _ in range(rnd.randrange(1, 6))],
        lambda: {"a": [1], "b": {"c": None}},
        lambda: nested(rnd, rnd.choice([5, 5, 100, 100, 1_000, 3_000])),
    ]
    return rnd.choice(options)()


def timestamp(rnd: random.Random) -> int:
    options: list[Callable[[], int]] = [
        lambda: 1_714_567_890_123 + rnd.randrange(-(10**10), 10**10),
        lambda: -1,
        lambda: rnd.choice([TIMESTAMP_MILLIS_MIN, TIMESTAMP_MILLIS_MAX]) + rnd.choice([-1, 0, 1]),
        lambda: 1_714_567_890_123_456 + rnd.randrange(10**6),  # microseconds
        lambda: 1_714_567_890_123_456_789,  # nanoseconds
        lambda: rnd.choice([-(2**63) + 1, 2**63 - 1]),
        lambda: rnd.randrange(-(2**63) + 1, 2**63),
    ]
    return rnd.choice(options)()


def raw_value(rnd: random.Random) -> bytes | None:
    kind = rnd.randrange(12)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.randbytes(rnd.randrange(0, 300))
    if kind == 2:
        return b"[" * (depth := rnd.choice([99, 100, 101, 5_000, 20_000])) + b"]" * depth * rnd.randrange(2)
    if kind == 3:
        return b'{"country": ' + b"9" * rnd.randrange(1, 6_000) + b"}"
    if kind == 4:
        return json.dumps({"country": unicode_text(rnd, 8)}, ensure_ascii=rnd.random() < 0.5).encode("utf-8")
    if kind == 5:
        return rnd.randbytes(rnd.choice([100_000, 400_000])) if rnd.random() < 0.03 else b"x" * 2_000
    if kind == 6:
        return json.dumps({"country": "DE"}).encode(rnd.choice(["utf-16", "utf-32", "utf-8-sig"]))
    if kind == 7:
        return json.dumps({"country": hostile_value(rnd)}).encode()
    return json.dumps({"country": rnd.choice(["DE", "FR", "", None, 49, "../../etc"]), "n": rnd.random()}).encode()


def chain(depth: int) -> dict[str, Any] | None:
    node: dict[str, Any] | None = None
    for level in range(depth):
        node = {"label": str(level), "next": node}
    return node


def typed_value(rnd: random.Random, topic: str) -> bytes | None:
    if rnd.random() < 0.05:
        return None  # tombstone
    if topic == TYPED_JSON:
        document: Any = order(rnd.randrange(1_000))
        if rnd.random() < 0.4:
            document[rnd.choice([*document, "extra"])] = hostile_value(rnd)
        return json.dumps(document).encode() if rnd.random() < 0.9 else raw_value(rnd)
    if topic == TYPED_CHAIN:
        return json.dumps(chain(rnd.choice([0, 1, 10, 98, 99, 100, 150]))).encode()
    schema_id = rnd.choice([1, 1, 2, 2, 3, 99])
    datum: Any = {
        1: order(rnd.randrange(100)),
        2: chain(rnd.randrange(1, 120)),
        3: {"ticks": [None] * rnd.randrange(50)},
    }
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, _PARSED.get(schema_id, _PARSED[1]), datum.get(schema_id, order(0)))
    body = stream.getvalue()
    mutation = rnd.randrange(8)
    if mutation == 0 and body:
        body = body[: rnd.randrange(len(body))]
    elif mutation == 1 and body:
        position = rnd.randrange(len(body))
        body = body[:position] + bytes([body[position] ^ (1 << rnd.randrange(8))]) + body[position + 1 :]
    elif mutation == 2:
        body = b"\x00\x02" * rnd.choice([150, 10_000]) + b"\x00\x00" if schema_id == 2 else body + b"\x00"
    elif mutation == 3:
        body = encode_long(rnd.choice([2**20, 2**62, -(2**62)])) + encode_long(4) + b"\x00"
    header = b"\x00" + schema_id.to_bytes(4, "big")
    return (header if rnd.random() < 0.995 else rnd.randbytes(5)) + body


def headers(rnd: random.Random) -> list[dict[str, Any]]:
    chance = rnd.random()
    count = rnd.choice([0, 0, 0, 1, 2, 3, 5]) if chance < 0.99 else (300 if chance < 0.999 else 3_000)
    found: list[dict[str, Any]] = []
    for _ in range(count):
        name = rnd.choice(["trace", "trace", "content-type", "", unicode_text(rnd, 6)])
        value = None if rnd.random() < 0.1 else list(rnd.randbytes(rnd.choice([0, 1, 16, 200])))
        found.append({name: value})
    return found


def well_formed_record(rnd: random.Random, topic: str, partition: int, offset: int) -> dict[str, Any]:
    value = raw_value(rnd) if topic not in (TYPED_JSON, TYPED_CHAIN, TYPED_CONFLUENT) else typed_value(rnd, topic)
    key = None if rnd.random() < 0.2 else rnd.randbytes(rnd.choice([0, 8, 36, 1_000]))
    record: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp(rnd),
        "timestampType": rnd.choice(["CREATE_TIME", "LOG_APPEND_TIME", "NO_TIMESTAMP_TYPE"]),
        "key": None if key is None else b64(key),
        "value": None if value is None else b64(value),
        "headers": headers(rnd),
    }
    if key is None and rnd.random() < 0.5:
        del record["key"]  # AWS leaves a null key out
    if topic == TYPED_CONFLUENT and rnd.random() < 0.1:
        record["valueSchemaMetadata"] = {"schemaId": rnd.choice(["1", "2", "abc", 7, None]), "dataFormat": "AVRO"}
    return record


def mutate_record(rnd: random.Random, record: dict[str, Any], others: list[Any]) -> Any:
    """One mutation of one record (which may replace it altogether)."""
    kind = rnd.randrange(10)
    if kind == 0:
        record.pop(rnd.choice(FIELDS), None)
    elif kind in (1, 2):
        record[rnd.choice(FIELDS)] = hostile_value(rnd)
        if record.get("topic") == TYPED_CONFLUENT and rnd.random() < 0.3:  # the ESM schema-registry integration's field
            record["valueSchemaMetadata"] = rnd.choice([hostile_value(rnd), {"schemaId": hostile_value(rnd)}])
    elif kind == 3:
        name = rnd.choice(["key", "value"])
        text = record.get(name) or "QUJD"
        if isinstance(text, str):
            position = rnd.randrange(len(text) + 1)
            record[name] = text[:position] + rnd.choice(["!", "=", "\n", " ", "\u00e9", "A", "==A"]) + text[position:]
    elif kind == 4:
        present = record.get("headers")
        entries: list[Any] = present if isinstance(present, list) else []
        entry = rnd.choice(
            [{"h": hostile_value(rnd)}, {"a": [1], "b": [2]}, {}, hostile_value(rnd), {hostile_text(rnd): [1, 2]}]
        )
        record["headers"] = [*entries, entry] if rnd.random() < 0.7 else [entry]
    elif kind == 5:
        record[hostile_text(rnd)] = hostile_value(rnd)  # an extra field
    elif kind == 6:
        return hostile_value(rnd)  # not a record object at all
    elif kind == 7 and others:
        return json.loads(json.dumps(rnd.choice(others)))  # a duplicate of another record of the event
    elif kind == 8:
        record["timestamp"] = rnd.choice([2**63, -(2**63), huge_int(rnd), 1.0, "1714567890123"])
    else:
        record["topic"] = rnd.choice(["", "\ud800", "bad\udcff", unicode_text(rnd, 10), "y" * 100_000])
    return record


def hostile_text(rnd: random.Random) -> str:
    return rnd.choice(["", "t-\u00b2", "t-\u0663", "-", "t-" + "9" * 5_000, "\ud800-1", "t-99999999999", "x" * 50_000])


def fuzz_event(rnd: random.Random) -> str:
    """One event as JSON text: a well-formed batch, usually with some records mutated, rarely malformed itself."""
    source = rnd.choice(SOURCES)
    event: dict[str, Any] = {"eventSource": source, "bootstrapServers": "b-1.fuzz:9098"}
    if source == "aws:kafka":
        event["eventSourceArn"] = MSK_ARN
    records: dict[str, list[Any]] = {}
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        topic, partition = rnd.choice(TOPICS), rnd.randrange(0, 4)
        first = rnd.choice([0, 7, 10**6, 2**63 - 1_000])
        count = rnd.choice([1, 2, 3, 5, 8]) if rnd.random() < 0.99 else 200
        chunk: list[Any] = [well_formed_record(rnd, topic, partition, first + n) for n in range(count)]
        if rnd.random() < 0.6:
            for _ in range(rnd.choice([1, 1, 2, 4])):
                index = rnd.randrange(len(chunk))
                if isinstance(chunk[index], dict):
                    chunk[index] = mutate_record(rnd, chunk[index], chunk)
        key = f"{topic}-{partition}" if rnd.random() < 0.95 else hostile_text(rnd)
        records.setdefault(key, []).extend(chunk)
    event["records"] = records
    if rnd.random() < 0.03:
        mutate_event(rnd, event)
    if rnd.random() < 0.03:
        event[rnd.choice(["bootstrapServers", "eventSourceArn"])] = hostile_value(rnd)
    return json.dumps(event)


def mutate_event(rnd: random.Random, event: dict[str, Any]) -> None:
    """Something no event source sends: the harness expects EventError for these."""
    kind = rnd.randrange(4)
    if kind == 0:
        event["eventSource"] = rnd.choice(["aws:sqs", None, 5, "", "AWS:KAFKA", hostile_value(rnd)])
    elif kind == 1:
        event["records"] = rnd.choice([[], None, "records", 5])
    elif kind == 2 and event["records"]:
        event["records"][next(iter(event["records"]))] = rnd.choice([{}, "x", None, 5])
    else:
        event["eventSource"] = "aws:kafka"
        event.pop("eventSourceArn", None)
