"""The archive layout: the ordered path segments that make a record's partition path (docs/configuration.md).

Every partition path is ``<topic>/<segment>/<segment>/...``. A segment is one of:

* ``FieldSegment``     ``<name>=<value of a field>``; ``field`` is a path such as ``customer.country``
* ``HeaderSegment``    ``<name>=<value of the last header of that name>``
* ``KeySegment``       ``<name>=<key>``, or with ``buckets`` N ``<name>=<hash bucket of the key, 0..N-1>``
* ``PartitionSegment`` ``<name>=<Kafka partition>``
* ``TimeSegment``      a strftime ``pattern`` (``year=%Y/month=%m``) of the record timestamp, or of a ``field`` holding
  epoch milliseconds or ISO-8601, in an IANA ``timezone``

The three partitioners of earlier versions are presets: ``default`` is ``[partition]``, ``time`` is ``[time]`` with
``TIME_PARTITION_PATTERN``/``TIME_PARTITION_TIMEZONE`` and ``field`` is ``[field]`` with ``PARTITION_FIELD``; they
give the same paths byte for byte.

The segment types are declared once, here: the function builds them from ``PARTITION_SEGMENTS`` (JSON text) with
``parse_segments``, and the deployment config (``infra/config.py``, pydantic) validates the same dataclasses. Each
checks itself when built and raises ``LayoutError`` naming its fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_PATTERN = "year=%Y/month=%m/day=%d/hour=%H"
# strftime directives that yield only digits, so a pattern can never produce an unsafe path.
TIME_DIRECTIVES = ("%Y", "%m", "%d", "%H", "%M")
MAX_TIME_PATTERN_LENGTH = 64
MAX_FIELD_PATH_LENGTH = 128
MAX_FIELD_PATH_DEPTH = 10
MAX_LABEL_LENGTH = 64
MAX_HEADER_NAME_LENGTH = 255
MAX_KEY_BUCKETS = 1024
MAX_SEGMENTS = 8

_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# A label is written as-is before "=": the characters encode_segment keeps, so a path stays safe without encoding.
_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_PATTERN_LITERAL = re.compile(r"^[A-Za-z0-9_=/-]*$")
# pydantic (infra/config.py) reads this from each segment dataclass: JSON's own types, unknown keys rejected.
_PYDANTIC_CONFIG: dict[str, Any] = {"extra": "forbid", "strict": True}

SegmentKind = Literal["field", "header", "key", "partition", "time"]
SEGMENT_KINDS: tuple[str, ...] = get_args(SegmentKind)


class LayoutError(ValueError):
    """Problems with one segment (or a list of them), each ``(field, message)`` relative to it.

    A ValueError, so pydantic reports it at the segment's place in the config (infra/config.py reads ``items``).
    """

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" if name else message for name, message in items))
        self.items = items


@dataclass(frozen=True, kw_only=True)
class FieldSegment:
    """``<name>=<value>`` of a field of the record value: JSON values by path, Avro values by their decoded record."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _PYDANTIC_CONFIG
    kind: Literal["field"] = "field"
    field: str
    name: str | None = None

    def __post_init__(self) -> None:
        _raise([*_field_path_problems("field", self.field), *_label_problems(self.name)])

    @property
    def label(self) -> str:
        return self.name or self.field

    @property
    def field_path(self) -> tuple[str, ...]:
        return tuple(self.field.split("."))


@dataclass(frozen=True, kw_only=True)
class HeaderSegment:
    """``<name>=<value>`` of the record's last header called ``header`` (Kafka's ``lastHeader``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _PYDANTIC_CONFIG
    kind: Literal["header"] = "header"
    header: str
    name: str | None = None

    def __post_init__(self) -> None:
        problems = _label_problems(self.name)
        header = self.header
        if not isinstance(header, str) or not 1 <= len(header) <= MAX_HEADER_NAME_LENGTH or not header.isprintable():
            problems.append(
                ("header", f"must be a header name of 1-{MAX_HEADER_NAME_LENGTH} printable characters; got {header!r}")
            )
        elif self.name is None and _label_problems(header):
            problems.append(
                ("name", f"is required: the header name {header!r} is not a path label (A-Z a-z 0-9 _ . -)")
            )
        _raise(problems)

    @property
    def label(self) -> str:
        return self.name or self.header


@dataclass(frozen=True, kw_only=True)
class KeySegment:
    """``<name>=<key>``; with ``buckets`` N, ``<name>=<bucket>`` with the bucket from a hash of the key (0..N-1)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _PYDANTIC_CONFIG
    kind: Literal["key"] = "key"
    buckets: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        problems = _label_problems(self.name)
        buckets = self.buckets
        if buckets is not None and (type(buckets) is not int or not 1 <= buckets <= MAX_KEY_BUCKETS):
            problems.append(("buckets", f"must be a whole number from 1 to {MAX_KEY_BUCKETS}; got {buckets!r}"))
        _raise(problems)

    @property
    def label(self) -> str:
        return self.name or ("key" if self.buckets is None else "key_bucket")


@dataclass(frozen=True, kw_only=True)
class PartitionSegment:
    """``<name>=<Kafka partition>``: the ``default`` preset's only segment, ``partition=<p>``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _PYDANTIC_CONFIG
    kind: Literal["partition"] = "partition"
    name: str | None = None

    def __post_init__(self) -> None:
        _raise(_label_problems(self.name))

    @property
    def label(self) -> str:
        return self.name or "partition"


@dataclass(frozen=True, kw_only=True)
class TimeSegment:
    """A strftime ``pattern`` of a time in ``timezone``: the record timestamp, or a ``field`` of the value holding
    epoch milliseconds (a number) or ISO-8601 (a string; without an offset it is UTC)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _PYDANTIC_CONFIG
    kind: Literal["time"] = "time"
    pattern: str = DEFAULT_TIME_PATTERN
    timezone: str = "UTC"
    field: str | None = None

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        pattern_problem = time_pattern_problem(self.pattern)
        if pattern_problem:
            problems.append(("pattern", pattern_problem))
        timezone_problem = time_zone_problem(self.timezone)
        if timezone_problem:
            problems.append(("timezone", timezone_problem))
        if self.field is not None:
            problems += _field_path_problems("field", self.field)
        _raise(problems)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def field_path(self) -> tuple[str, ...]:
        """The field's path (empty: the record timestamp)."""
        return tuple(self.field.split(".")) if self.field else ()

    @property
    def labels(self) -> list[str]:
        """The labels its pattern names (``year`` of ``year=%Y``)."""
        return [part.rpartition("=")[0] for part in self.pattern.split("/") if "=" in part]


Segment = FieldSegment | HeaderSegment | KeySegment | PartitionSegment | TimeSegment
_TYPES: dict[str, type[Segment]] = {
    "field": FieldSegment,
    "header": HeaderSegment,
    "key": KeySegment,
    "partition": PartitionSegment,
    "time": TimeSegment,
}


def preset(partitioner: str, *, time_pattern: str, timezone: str, partition_field: str | None) -> tuple[Segment, ...]:
    """The segments of one of the named partitioners (``default``, ``time``, ``field``)."""
    if partitioner == "time":
        return (TimeSegment(pattern=time_pattern, timezone=timezone),)
    if partitioner == "field":
        assert partition_field is not None, "Settings requires PARTITION_FIELD with the field partitioner"
        return (FieldSegment(field=partition_field),)
    return (PartitionSegment(),)


def labels_of(segments: Sequence[Segment]) -> list[str]:
    """Every label the segments write before an ``=``, in path order."""
    found: list[str] = []
    for segment in segments:
        found += segment.labels if isinstance(segment, TimeSegment) else [segment.label]
    return found


def layout_problems(segments: Sequence[Segment]) -> list[str]:
    """What is wrong with the segments together: their number and repeated labels."""
    problems = []
    if not 1 <= len(segments) <= MAX_SEGMENTS:
        problems.append(f"must list 1 to {MAX_SEGMENTS} segments; got {len(segments)}")
    labels = labels_of(segments)
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        problems.append(
            f"repeats the label(s) {', '.join(map(repr, repeated))}: every segment needs its own (set 'name')"
        )
    return problems


def parse_segments(text: str) -> tuple[tuple[Segment, ...], list[str]]:
    """``PARTITION_SEGMENTS`` (a JSON list of segment objects) -> segments, and every problem, each naming its item."""
    try:
        items = json.loads(text)
    except ValueError as error:
        return (), [f"must be a JSON list of segment objects: {error}"]
    if not isinstance(items, list):
        return (), [f"must be a JSON list of segment objects; got {type(items).__name__}"]
    segments: list[Segment] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            segments.append(segment_from_json(item))
        except LayoutError as error:
            problems += [f"[{index}]{'.' + name if name else ''}: {message}" for name, message in error.items]
    if not problems:
        problems += layout_problems(segments)
    return tuple(segments), problems


def segment_from_json(item: object) -> Segment:
    """One segment from its JSON object, checking its keys and JSON types first."""
    if not isinstance(item, dict):
        raise LayoutError([("", f"must be an object with a 'kind' ({', '.join(SEGMENT_KINDS)})")])
    kind = item.get("kind")
    if kind not in _TYPES:
        raise LayoutError([("kind", f"must be one of {', '.join(SEGMENT_KINDS)}; got {kind!r}")])
    cls = _TYPES[kind]
    known = [entry.name for entry in fields(cls)]
    problems = [(key, f"is not a field of a {kind} segment ({', '.join(known)})") for key in item if key not in known]
    for key, value in item.items():
        wants_int = key == "buckets"
        if key in known and value is not None and (type(value) is not (int if wants_int else str)):
            problems.append((key, f"must be {'a whole number' if wants_int else 'a string'}; got {value!r}"))
    bad_keys = {key for key, _ in problems}
    usable = {key: value for key, value in item.items() if value is not None and key not in bad_keys}
    required = [entry.name for entry in fields(cls) if entry.default is MISSING and entry.name not in usable]
    problems += [(name, "is required") for name in required if name not in bad_keys]
    if not problems:
        return cls(**usable)  # raises LayoutError for values its own checks reject
    try:
        placeholders: dict[str, Any] = dict.fromkeys(required, "")
        cls(**placeholders, **usable)
    except LayoutError as error:  # report its own checks on what is usable too, all at once
        problems += [found for found in error.items if found[0] in usable]
    raise LayoutError(problems)


def segments_json(segments: Sequence[Segment]) -> str:
    """Compact JSON text of the segments (``PARTITION_SEGMENTS``): unset fields left out, so it parses back equal."""
    items = [{key: value for key, value in asdict(segment).items() if value is not None} for segment in segments]
    return json.dumps(items, separators=(",", ":"))


def time_pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` is not a safe time pattern, or None. Only digit-producing directives are allowed."""
    allowed = ", ".join(TIME_DIRECTIVES)
    if not isinstance(pattern, str):
        return f"must be a string; got {pattern!r}"
    literal = re.sub(r"%[A-Za-z%]", "", pattern)
    directives = re.findall(r"%.?", pattern)
    unknown = sorted({d for d in directives if d not in TIME_DIRECTIVES})
    if not pattern or len(pattern) > MAX_TIME_PATTERN_LENGTH:
        return f"must be 1-{MAX_TIME_PATTERN_LENGTH} characters; got {pattern!r}"
    if unknown:
        return f"may use only the directives {allowed}; got {', '.join(unknown)} in {pattern!r}"
    if not directives:
        return f"must contain at least one of {allowed}; got {pattern!r}"
    if not _PATTERN_LITERAL.match(literal) or pattern.startswith("/") or pattern.endswith("/"):
        return f"may contain only A-Z a-z 0-9 _ = - and inner '/' besides directives; got {pattern!r}"
    if "//" in pattern or any(segment in (".", "..") for segment in pattern.split("/")):
        return f"must not contain empty or dot segments; got {pattern!r}"
    return None


def time_zone_problem(timezone: object) -> str | None:
    try:
        if isinstance(timezone, str):
            ZoneInfo(timezone)
            return None
    except (ZoneInfoNotFoundError, ValueError):
        pass
    return f"must be an IANA time zone such as 'UTC' or 'Europe/Berlin'; got {timezone!r}"


def field_path_problem(path: object) -> str | None:
    """Why ``path`` is not a field path (identifiers joined by '.'), or None."""
    if (
        not isinstance(path, str)
        or len(path) > MAX_FIELD_PATH_LENGTH
        or not _FIELD_PATH.match(path)
        or path.count(".") >= MAX_FIELD_PATH_DEPTH
    ):
        return (
            f"must be a field name or a path of field names joined by '.' (each A-Z a-z 0-9 _, not starting with a "
            f"digit; at most {MAX_FIELD_PATH_DEPTH} names, {MAX_FIELD_PATH_LENGTH} characters), e.g. "
            f"'customer.country'; got {path!r}"
        )
    return None


def _field_path_problems(name: str, path: object) -> list[tuple[str, str]]:
    problem = field_path_problem(path)
    return [(name, problem)] if problem else []


def _label_problems(label: object) -> list[tuple[str, str]]:
    if label is None:
        return []
    if not isinstance(label, str) or len(label) > MAX_LABEL_LENGTH or not _LABEL.match(label):
        return [
            (
                "name",
                f"must be 1-{MAX_LABEL_LENGTH} of A-Z a-z 0-9 _ . - (not starting with '.' or '-'); got {label!r}",
            )
        ]
    return []


def _raise(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise LayoutError(problems)
