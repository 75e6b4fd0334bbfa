"""The value schemas the typed-archive tests use: an order (v1) and its backward-compatible evolution (v2)."""

from __future__ import annotations

from typing import Any

ORDER_V1: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "shop.orders",
    "fields": [
        {"name": "order_id", "type": "long"},
        {"name": "country", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
        {"name": "items", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}

# v2 adds a field with a default: v1 data read with v2 gets the default (BACKWARD compatible).
ORDER_V2: dict[str, Any] = {
    **ORDER_V1,
    "fields": [*ORDER_V1["fields"], {"name": "channel", "type": "string", "default": "web"}],
}

# A record without a namespace named like the archive's own Header type: it must not clash with it.
HEADER_LIKE: dict[str, Any] = {
    "type": "record",
    "name": "Header",
    "fields": [{"name": "sensor", "type": "string"}, {"name": "reading", "type": "float"}],
}


def order(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": n,
        "country": "DE",
        "amount": n * 1.5,
        "note": None if n % 2 else f"note {n}",
        "status": "PAID",
        "items": [f"sku-{n}"],
        **extra,
    }
