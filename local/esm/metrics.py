"""CloudWatch Embedded Metric Format (EMF) lines from a function's logs -> ``PutMetricData`` on LocalStack.

On AWS, CloudWatch Logs turns the EMF lines Powertools prints into metrics. LocalStack does not, so the emulator
does it, and the deployed dashboard's custom metrics have data locally too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_DATUMS_PER_CALL = 1000


@dataclass(frozen=True)
class MetricPoint:
    namespace: str
    name: str
    unit: str
    values: tuple[float, ...]
    dimensions: tuple[tuple[str, str], ...]
    timestamp_ms: int


def parse_emf(logs: str) -> list[MetricPoint]:
    """Every metric in the EMF documents found in ``logs`` (one JSON object per line; other lines are skipped)."""
    points: list[MetricPoint] = []
    for line in logs.splitlines():
        document = _json_object(line)
        if document is None or not isinstance(document.get("_aws"), dict):
            continue
        points.extend(_points(document))
    return points


def _json_object(line: str) -> dict[str, Any] | None:
    start = line.find("{")
    if start < 0:
        return None
    try:
        value = json.loads(line[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _points(document: dict[str, Any]) -> Iterator[MetricPoint]:
    meta = document["_aws"]
    timestamp = int(meta.get("Timestamp") or datetime.now(tz=UTC).timestamp() * 1000)
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = str(directive.get("Namespace", ""))
        dimension_sets = directive.get("Dimensions") or [[]]
        for definition in directive.get("Metrics") or []:
            name = str(definition.get("Name", ""))
            raw = document.get(name)
            if raw is None or not namespace or not name:
                continue
            values = tuple(float(v) for v in (raw if isinstance(raw, list) else [raw]))
            for dimension_names in dimension_sets:
                dimensions = tuple((str(d), str(document.get(d, ""))) for d in dimension_names)
                yield MetricPoint(namespace, name, str(definition.get("Unit", "None")), values, dimensions, timestamp)


def put_metrics(cloudwatch: Any, points: list[MetricPoint]) -> int:
    """Publish ``points`` with PutMetricData, one call per namespace and 1000 datums. Returns datums sent."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        datum: dict[str, Any] = {
            "MetricName": point.name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in point.dimensions],
            "Timestamp": datetime.fromtimestamp(point.timestamp_ms / 1000, tz=UTC),
            "Unit": point.unit,
        }
        if len(point.values) == 1:
            datum["Value"] = point.values[0]
        else:
            datum["Values"] = list(point.values)
        by_namespace.setdefault(point.namespace, []).append(datum)
    sent = 0
    for namespace, datums in by_namespace.items():
        for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
            chunk = datums[start : start + MAX_DATUMS_PER_CALL]
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
            sent += len(chunk)
    return sent


def totals(points: list[MetricPoint]) -> dict[str, float]:
    """Sum of each metric's values (over one dimension set), e.g. {"ObjectsWritten": 3.0}."""
    sums: dict[str, float] = {}
    seen: set[tuple[str, int, tuple[float, ...]]] = set()
    for point in points:
        key = (point.name, point.timestamp_ms, point.values)
        if key in seen:  # the same value repeated for a second dimension set
            continue
        seen.add(key)
        sums[point.name] = sums.get(point.name, 0.0) + sum(point.values)
    return sums
