"""values/avro_bounds: which writer schemas need their bodies walked, and that the walk accepts what fastavro
writes and refuses only what is too deep, too empty or broken."""

from __future__ import annotations

import io
import random
from typing import Any

import fastavro
import pytest

from archiver.encoding import encode_long
from archiver.errors import ValueDecodeError
from archiver.jsontext import MAX_NESTING
from archiver.values.avro_bounds import MAX_EMPTY_ITEMS, body_checker
from tests.typed.schemas import ORDER_V1

TREE: dict[str, Any] = {
    "type": "record",
    "name": "Tree",
    "fields": [
        {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 2}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["LEAF", "NODE"]}},
        {"name": "weight", "type": ["null", "double", "float", "boolean"]},
        {"name": "tags", "type": {"type": "map", "values": "bytes"}},
        {"name": "children", "type": {"type": "array", "items": "Tree"}},
    ],
}
MARKS: dict[str, Any] = {
    "type": "record",
    "name": "Marks",
    "fields": [
        {"name": "marks", "type": {"type": "array", "items": {"type": "record", "name": "Mark", "fields": []}}},
        {"name": "n", "type": "long"},
    ],
}


def checker(schema: Any) -> Any:
    named: dict[str, Any] = {}
    parsed = fastavro.parse_schema(schema, named_schemas=named)
    return parsed, body_checker(parsed, named)


def body(parsed: Any, datum: Any) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, parsed, datum)
    return stream.getvalue()


def tree(rnd: random.Random, depth: int) -> dict[str, Any]:
    children = [tree(rnd, depth - 1) for _ in range(rnd.randrange(3))] if depth > 1 else []
    return {
        "id": rnd.randbytes(2),
        "kind": rnd.choice(["LEAF", "NODE"]),
        "weight": rnd.choice([None, 1.5, True]),
        "tags": {f"t{n}": rnd.randbytes(n) for n in range(rnd.randrange(3))},
        "children": children,
    }


def test_only_recursive_schemas_and_arrays_of_empty_items_are_walked() -> None:
    assert checker(ORDER_V1)[1] is None
    assert checker({"type": "array", "items": "long"})[1] is None
    assert checker(TREE)[1] is not None
    assert checker(MARKS)[1] is not None
    assert checker({"type": "array", "items": "null"})[1] is not None


def test_the_walk_accepts_every_body_fastavro_writes() -> None:
    parsed, check = checker(TREE)
    rnd = random.Random(7)
    for _ in range(200):
        datum = tree(rnd, rnd.randrange(1, 6))
        check(body(parsed, datum))  # no error
    chain: dict[str, Any] = tree(rnd, 1)
    for _ in range(MAX_NESTING // 2 - 1):  # a record and an array per level
        chain = {**tree(rnd, 1), "children": [chain]}
    check(body(parsed, chain))
    with pytest.raises(ValueDecodeError, match=f"deeper than {MAX_NESTING}"):
        check(body(parsed, {**tree(rnd, 1), "children": [chain]}))


def test_the_walk_refuses_truncated_and_impossible_bodies() -> None:
    parsed, check = checker(TREE)
    valid = body(parsed, tree(random.Random(3), 4))
    for cut in range(len(valid)):
        with pytest.raises(ValueDecodeError):
            check(valid[:cut])
    with pytest.raises(ValueDecodeError, match="union branch"):
        check(b"ab" + b"\x00" + b"\x08")  # id, kind LEAF, weight branch 4 of 4


def test_empty_items_are_counted_not_built() -> None:
    parsed, check = checker(MARKS)
    check(body(parsed, {"marks": [{}] * MAX_EMPTY_ITEMS, "n": 1}))
    with pytest.raises(ValueDecodeError, match="zero bytes"):
        check(encode_long(MAX_EMPTY_ITEMS + 1) + b"\x00" + encode_long(1))
    with pytest.raises(ValueDecodeError, match="zero bytes"):
        check(encode_long(-(2**62)) + encode_long(0) + b"\x00" + encode_long(1))  # a negative count has a size
