"""The function's configuration: one typed, validated ``Settings``.

The Lambda builds it once per container with ``Settings.from_env()``; the CDK stack builds the same type and
calls ``to_env()`` to produce the function's environment. One source of truth, validated at both edges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

from archiver.errors import SettingsError
from archiver.layout import (
    DEFAULT_TIME_PATTERN,
    MAX_TIME_PATTERN_LENGTH,
    TIME_DIRECTIVES,
    Segment,
    field_path_problem,
    parse_segments,
    preset,
    time_pattern_problem,
    time_zone_problem,
)
from archiver.values.config import ValueFormats, parse_value_formats

# "default", "time" and "field" are presets of the composed layout; "segments" is PARTITION_SEGMENTS (layout.py).
Partitioner = Literal["default", "time", "field", "segments"]
Codec = Literal["null", "deflate", "snappy", "zstandard"]
# The classes a PutObject may name whose objects every reader (Athena, verify, replay, compaction, the function's
# own retry check) can GET at once. GLACIER and DEEP_ARCHIVE need a restore before a GET (the archive would be
# unreadable to all of them, and a retried batch could not check what an object holds); REDUCED_REDUNDANCY is
# deprecated by AWS; EXPRESS_ONEZONE, OUTPOSTS, SNOW and FSX_OPENZFS are not classes of a general purpose bucket.
StorageClass = Literal["STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR"]

PARTITIONERS: tuple[str, ...] = get_args(Partitioner)
CODECS: tuple[str, ...] = get_args(Codec)
STORAGE_CLASSES: tuple[str, ...] = get_args(StorageClass)
UNREADABLE_STORAGE_CLASSES = {
    "GLACIER": "needs a restore before any GET",
    "DEEP_ARCHIVE": "needs a restore (up to 48 hours) before any GET",
    "REDUCED_REDUNDANCY": "is deprecated by AWS and costs more than STANDARD",
    "EXPRESS_ONEZONE": "is for directory buckets only",
    "OUTPOSTS": "is for S3 on Outposts only",
    "SNOW": "is for Snow devices only",
    "FSX_OPENZFS": "is for FSx access points only",
}
# S3 object tags (S3 user guide, "Categorizing your objects using tags"): at most 10 per object, keys of 1-128 and
# values of 0-256 Unicode characters (counted in UTF-16, as S3 stores them), of letters, digits, spaces and
# + - = . _ : / @; keys starting with "aws:" are reserved.
MAX_OBJECT_TAGS = 10
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256

# Measured in bench/ (docs/benchmarks.md) on JSON values of 100 B to 10 KB: with zstandard the archive stores
# 0.21-0.29 of the payload and the handler runs within 10-16% of its speed with snappy, which stores 0.32-0.46.
# deflate stores up to 11% less (at 10 KB; 3% more at 100 B) but makes the whole handler 1.4-4 times slower.
DEFAULT_CODEC: Codec = "zstandard"
DEFAULT_PREFIX = "topics/"
DEAD_LETTER_PREFIX = "dead-letter/"
MAX_PREFIX_LENGTH = 256

__all__ = ["DEFAULT_TIME_PATTERN", "MAX_TIME_PATTERN_LENGTH", "TIME_DIRECTIVES"]  # re-exported from archiver.layout

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SAFE_PREFIX = re.compile(r"^([A-Za-z0-9_.=-]+/)*$")
_TAG_TEXT = re.compile(r"^[\w +\-=.:/@]*$")  # \w: Unicode letters, digits and _


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What to archive where. Construct it directly (infra) or with ``from_env`` (Lambda); both validate."""

    archive_bucket: str
    dead_letter_queue_url: str
    archive_prefix: str = DEFAULT_PREFIX
    partitioner: Partitioner = "default"
    time_pattern: str = DEFAULT_TIME_PATTERN
    timezone: str = "UTC"
    partition_field: str | None = None
    # partitioner "segments": the composed layout as JSON text (archiver.layout.parse_segments).
    partition_segments: str | None = None
    codec: Codec = DEFAULT_CODEC
    # Every archive object is put with this storage class and these tags (a JSON object of strings, or None).
    storage_class: StorageClass = "STANDARD"
    object_tags: str | None = None
    # Typed archives (docs/typed-archives.md): per-topic value formats as JSON text, and where their .avsc live.
    value_formats: str | None = None
    value_schemas_dir: str | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _value_formats: ValueFormats = field(init=False, repr=False, compare=False)
    _segments: tuple[Segment, ...] = field(init=False, repr=False, compare=False)
    _tags: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once: it reads and parses every .avsc file the formats name.
        value_formats, format_problems = parse_value_formats(self.value_formats, self.value_schemas_dir)
        segments: tuple[Segment, ...] = ()
        segment_problems: list[str] = []
        if self.partition_segments is not None:
            segments, segment_problems = parse_segments(self.partition_segments)
        tags, tag_problems = parse_object_tags(self.object_tags)
        problems = _problems(self, format_problems, segment_problems, tag_problems)
        if problems:
            raise SettingsError(problems)
        if self.partitioner != "segments":
            segments = preset(
                self.partitioner,
                time_pattern=self.time_pattern,
                timezone=self.timezone,
                partition_field=self.partition_field,
            )
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_value_formats", value_formats)
        object.__setattr__(self, "_segments", segments)
        object.__setattr__(self, "_tags", tags)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The partition path's segments after the topic: PARTITION_SEGMENTS, or the preset PARTITIONER names."""
        return self._segments

    @property
    def tags(self) -> dict[str, str]:
        """The tags every archive object is put with (empty: none)."""
        return dict(self._tags)

    @property
    def typed_topics(self) -> ValueFormats:
        """The parsed format of every topic that is not ``raw``."""
        return self._value_formats

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings from environment variables, naming every missing or invalid one in one error."""
        problems = [f"{name} is required" for name in REQUIRED_ENV if not env.get(name)]
        if problems:
            raise SettingsError(problems)
        values = {attr: env[name] for attr, name in ENV_NAMES.items() if env.get(name) not in (None, "")}
        if "archive_prefix" not in values and ENV_NAMES["archive_prefix"] in env:
            values["archive_prefix"] = ""  # an explicitly empty prefix means the bucket root
        return cls(**cast("dict[str, Any]", values))

    def to_env(self) -> dict[str, str]:
        """The environment variables that make ``from_env`` return an equal ``Settings``."""
        env = {}
        for item in fields(self):
            if item.init and (value := getattr(self, item.name)) is not None:
                env[ENV_NAMES[item.name]] = str(value)
        return env


ENV_NAMES: dict[str, str] = {
    "archive_bucket": "ARCHIVE_BUCKET",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "archive_prefix": "ARCHIVE_PREFIX",
    "partitioner": "PARTITIONER",
    "time_pattern": "TIME_PARTITION_PATTERN",
    "timezone": "TIME_PARTITION_TIMEZONE",
    "partition_field": "PARTITION_FIELD",
    "partition_segments": "PARTITION_SEGMENTS",
    "codec": "AVRO_CODEC",
    "storage_class": "STORAGE_CLASS",
    "object_tags": "OBJECT_TAGS",
    "value_formats": "VALUE_FORMATS",
    "value_schemas_dir": "VALUE_SCHEMAS_DIR",
}
REQUIRED_ENV = (ENV_NAMES["archive_bucket"], ENV_NAMES["dead_letter_queue_url"])


def _problems(
    settings: Settings, value_format_problems: list[str], segment_problems: list[str], tag_problems: list[str]
) -> list[str]:
    """Every problem with ``settings``, each naming the variable and what it accepts."""
    problems: list[str] = []

    def bad(attr: str, message: str) -> None:
        problems.append(f"{ENV_NAMES[attr]} ({attr}) {message}")

    bucket = settings.archive_bucket
    if not _is_deploy_time_reference(bucket) and (not _BUCKET_NAME.match(bucket) or ".." in bucket):
        bad("archive_bucket", f"must be a valid S3 bucket name (3-63 of a-z 0-9 . -), got {settings.archive_bucket!r}")
    queue_url = settings.dead_letter_queue_url
    if not _is_deploy_time_reference(queue_url) and not re.match(r"^https?://\S+$", queue_url):
        bad("dead_letter_queue_url", f"must be an SQS queue URL (https://...), got {settings.dead_letter_queue_url!r}")

    prefix = settings.archive_prefix
    if len(prefix) > MAX_PREFIX_LENGTH or not _SAFE_PREFIX.match(prefix) or _has_dot_segment(prefix):
        bad(
            "archive_prefix",
            f"must be empty or '/'-terminated segments of A-Z a-z 0-9 _ . = - (no '.' or '..' segments), "
            f"at most {MAX_PREFIX_LENGTH} characters, e.g. 'topics/'; got {prefix!r}",
        )
    elif prefix.startswith(DEAD_LETTER_PREFIX):
        bad("archive_prefix", f"must not start with the reserved {DEAD_LETTER_PREFIX!r}; got {prefix!r}")

    if settings.partitioner not in PARTITIONERS:
        bad("partitioner", f"must be one of {', '.join(PARTITIONERS)}; got {settings.partitioner!r}")
    if settings.codec not in CODECS:
        bad("codec", f"must be one of {', '.join(CODECS)}; got {settings.codec!r}")

    pattern_problem = time_pattern_problem(settings.time_pattern)
    if pattern_problem:
        bad("time_pattern", pattern_problem)
    timezone_problem = time_zone_problem(settings.timezone)
    if timezone_problem:
        bad("timezone", timezone_problem)

    name = settings.partition_field
    if settings.partitioner == "field" and not name:
        bad("partition_field", "is required when PARTITIONER is 'field'")
    path_problem = field_path_problem(name) if name is not None else None
    if path_problem:
        bad("partition_field", path_problem)
    problems += _segment_problems(settings, segment_problems)
    storage_class = settings.storage_class
    if storage_class not in STORAGE_CLASSES:
        why = UNREADABLE_STORAGE_CLASSES.get(storage_class)
        reason = f"{storage_class} {why}" if why else f"got {storage_class!r}"
        bad("storage_class", f"must be one of {', '.join(STORAGE_CLASSES)}; {reason}")
    for problem in tag_problems:
        bad("object_tags", problem)
    for problem in value_format_problems:
        bad("value_formats", problem)
    return problems


def _segment_problems(settings: Settings, segment_problems: list[str]) -> list[str]:
    """PARTITION_SEGMENTS is the layout of the "segments" partitioner, and only of it."""
    name = ENV_NAMES["partition_segments"]
    if settings.partitioner != "segments":
        if settings.partition_segments is not None:
            return [f"{name} (partition_segments) only applies when PARTITIONER is 'segments'"]
        return []
    problems = [f"{name} (partition_segments) {problem}" for problem in segment_problems]
    if settings.partition_segments is None:
        problems.append(f"{name} (partition_segments) is required when PARTITIONER is 'segments'")
    if settings.partition_field is not None:
        problems.append(
            f"{ENV_NAMES['partition_field']} (partition_field) only applies when PARTITIONER is 'field'; "
            "with 'segments' use a field segment"
        )
    for attr, default in (("time_pattern", DEFAULT_TIME_PATTERN), ("timezone", "UTC")):
        if getattr(settings, attr) != default:
            problems.append(
                f"{ENV_NAMES[attr]} ({attr}) only applies when PARTITIONER is 'time'; with 'segments' set the time "
                "segment's own"
            )
    return problems


def parse_object_tags(text: str | None) -> tuple[dict[str, str], list[str]]:
    """``OBJECT_TAGS`` (a JSON object of strings) -> tags, and every problem S3 would reject."""
    if text is None:
        return {}, []
    try:
        tags = json.loads(text)
    except ValueError as error:
        return {}, [f"must be a JSON object of tag keys to values: {error}"]
    if not isinstance(tags, dict):
        return {}, [f"must be a JSON object of tag keys to values; got {type(tags).__name__}"]
    return tags, object_tag_problems(tags)


def object_tag_problems(tags: Mapping[str, object]) -> list[str]:
    """What S3 would reject in these object tags (PutObject's ``Tagging``)."""
    problems = []
    if len(tags) > MAX_OBJECT_TAGS:
        problems.append(f"has {len(tags)} tags; S3 allows at most {MAX_OBJECT_TAGS} per object")
    allowed = "letters, digits, spaces and _ + - = . : / @"
    for key, value in tags.items():
        if not 1 <= _utf16_length(key) <= MAX_TAG_KEY_LENGTH or not _TAG_TEXT.match(key):
            problems.append(f"key {key!r} must be 1-{MAX_TAG_KEY_LENGTH} characters of {allowed}")
        elif key.lower().startswith("aws:"):
            problems.append(f"key {key!r} must not start with 'aws:' (reserved by AWS)")
        if not isinstance(value, str):
            problems.append(f"value of {key!r} must be a string; got {value!r}")
        elif _utf16_length(value) > MAX_TAG_VALUE_LENGTH or not _TAG_TEXT.match(value):
            problems.append(f"value of {key!r} must be 0-{MAX_TAG_VALUE_LENGTH} characters of {allowed}")
    return problems


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _is_deploy_time_reference(value: str) -> bool:
    """True for a CDK token (e.g. a bucket name CloudFormation will choose): it is checked at deploy time."""
    return "${Token[" in value


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))
