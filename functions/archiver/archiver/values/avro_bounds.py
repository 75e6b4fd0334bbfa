"""Avro bodies whose length does not bound the work of decoding them, checked before fastavro reads them.

For most schemas an Avro body bounds its own decoding: every value takes at least one byte and nesting is as deep
as the schema. Two kinds of schema break that, and fastavro's compiled reader trusts the body in both:

* **Recursive** schemas (a record that contains itself through a union, array or map, e.g. a linked list or a
  tree). One byte per level is enough to nest arbitrarily deep, and fastavro recurses in C without any check: a
  10 KB value of ``{"name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}`` crashes the process
  with a segmentation fault (measured: ~4,000 levels exhaust an 8 MB stack).
* **Arrays of zero-byte items** (``null``, records of only nulls, ``fixed`` of size 0). A block count of 2**62
  costs ten bytes and makes the reader build a list of 2**62 items.

For those schemas ``check_body`` walks the body first, without building anything, with an explicit stack: every
step consumes a byte except the zero-byte items, which are counted rather than walked, so the walk itself is
bounded by the body's length. Values that nest records, arrays and maps deeper than ``MAX_NESTING`` (the JSON
limit, archiver.jsontext) or hold more than ``MAX_EMPTY_ITEMS`` zero-byte items are rejected with
``ValueDecodeError`` and dead-lettered. Every other schema costs nothing: ``body_checker`` returns None for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archiver.encoding import decode_long
from archiver.errors import ValueDecodeError
from archiver.jsontext import MAX_NESTING

MAX_EMPTY_ITEMS = 1_000_000  # zero-byte array items per value: a list of a million Nones is 8 MB
_PRIMITIVE_SIZES = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_NESTED = ("record", "error", "array", "map")

Schema = Any  # a parsed (fastavro.parse_schema) schema: a name, a dict, or a list (union)
BodyCheck = Callable[[bytes], None]


def body_checker(schema: Schema, named: Mapping[str, Any]) -> BodyCheck | None:
    """A function that raises ``ValueDecodeError`` for bodies of ``schema`` too costly to decode; None when the
    schema needs none. ``named`` holds the named types, as ``fastavro.parse_schema(schema, named_schemas=...)``
    collects them."""
    if not (_is_recursive(schema, named) or _has_empty_items(schema, named)):
        return None
    return lambda body: _walk(body, schema, named)


def _resolve(schema: Schema, named: Mapping[str, Any]) -> Schema:
    return named.get(schema, schema) if isinstance(schema, str) else schema


def _kind(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        return kind if isinstance(kind, str) else _kind(kind)
    return str(schema)


def _children(schema: Schema) -> list[Schema]:
    kind = _kind(schema)
    if kind == "union":
        return list(schema)
    if kind in ("record", "error"):
        return [item["type"] for item in schema["fields"]]
    if kind == "array":
        return [schema["items"]]
    if kind == "map":
        return [schema["values"]]
    return []


def _is_recursive(schema: Schema, named: Mapping[str, Any]) -> bool:
    """Whether a named type can contain itself (depth-first search for a cycle through named references)."""
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(node: Schema) -> bool:
        name = node if isinstance(node, str) and node in named else None
        if name is not None:
            if name in on_path:
                return True
            if name in done:
                return False
            on_path.add(name)
        found = any(visit(child) for child in _children(_resolve(node, named)))
        if name is not None:
            on_path.discard(name)
            done.add(name)
        return found

    return visit(schema)


def _is_empty(schema: Schema, named: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """Whether every value of ``schema`` encodes to zero bytes (null, size-0 fixed, records of only those)."""
    if isinstance(schema, str) and schema in named:
        if schema in seen:
            return False  # a record that contains itself directly has no finite value; the walk's depth limit ends it
        return _is_empty(named[schema], named, seen | {schema})
    kind = _kind(schema)
    if kind == "null":
        return True
    if kind == "fixed":
        return int(schema["size"]) == 0
    if kind in ("record", "error"):
        return all(_is_empty(item["type"], named, seen) for item in schema["fields"])
    return False


def _has_empty_items(schema: Schema, named: Mapping[str, Any]) -> bool:
    seen: set[int] = set()
    pending = [schema]
    while pending:
        node = _resolve(pending.pop(), named)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if _kind(node) == "array" and _is_empty(node["items"], named):
            return True
        pending += _children(node)
    return False


@dataclass(slots=True)
class _Items:
    """An array or map being walked: its item schema, items left in the current block, and whether it is a map."""

    items: Schema
    left: int
    is_map: bool
    empty: bool


_EXIT = object()  # marks the end of a record, array or map on the walk's stack


def _walk(body: bytes, schema: Schema, named: Mapping[str, Any]) -> None:
    reader = _Reader(body)
    depth = 0
    empty_items = 0
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if node is _EXIT:
            depth -= 1
            continue
        if isinstance(node, _Items):
            if node.left == 0:
                count = reader.long()
                if count == 0:
                    continue  # the array or map ends
                if count < 0:  # a negative count is followed by the block's size in bytes
                    count = -count
                    reader.long()
                node.left = count
            if node.empty:
                empty_items += node.left
                if empty_items > MAX_EMPTY_ITEMS:
                    raise ValueDecodeError(f"value holds more than {MAX_EMPTY_ITEMS:,} array items of zero bytes")
                node.left = 0
                stack.append(node)
                continue
            node.left -= 1
            stack += (node, node.items, "string") if node.is_map else (node, node.items)
            continue
        node = _resolve(node, named)
        kind = _kind(node)
        if kind in _NESTED:
            depth += 1
            if depth > MAX_NESTING:
                raise ValueDecodeError(f"value nests records, arrays and maps deeper than {MAX_NESTING} levels")
            stack.append(_EXIT)
            if kind == "array" or kind == "map":
                items = node["items"] if kind == "array" else node["values"]
                stack.append(_Items(items, 0, kind == "map", _is_empty(items, named)))
            else:
                stack += reversed([item["type"] for item in node["fields"]])
        elif kind == "union":
            index = reader.long()
            if not 0 <= index < len(node):
                raise ValueDecodeError(f"value names union branch {index} of {len(node)}")
            stack.append(node[index])
        elif kind in ("int", "long", "enum"):
            reader.long()
        elif kind in ("bytes", "string"):
            reader.skip(reader.long())
        elif kind == "fixed":
            reader.skip(int(node["size"]))
        elif kind in _PRIMITIVE_SIZES:
            reader.skip(_PRIMITIVE_SIZES[kind])
        else:
            raise ValueDecodeError(f"writer schema has a type the body check does not know: {kind!r}")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def skip(self, size: int) -> None:
        if size < 0 or self._position + size > len(self._data):
            raise ValueDecodeError("value is not an Avro body of its writer schema: it ends too early")
        self._position += size

    def long(self) -> int:
        try:
            value, self._position = decode_long(self._data, self._position)
        except ValueError as error:
            raise ValueDecodeError(f"value is not an Avro body of its writer schema: {error}") from error
        return value
