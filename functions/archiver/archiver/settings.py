"""The function's configuration: one typed, validated ``Settings``.

The Lambda builds it once per container with ``Settings.from_env()``; the CDK stack builds the same type and
calls ``to_env()`` to produce the function's environment. One source of truth, validated at both edges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from archiver.errors import SettingsError
from archiver.values.config import ValueFormats, parse_value_formats

Partitioner = Literal["default", "time", "field"]
Codec = Literal["null", "deflate", "snappy", "zstandard"]

PARTITIONERS: tuple[str, ...] = get_args(Partitioner)
CODECS: tuple[str, ...] = get_args(Codec)

# Measured in bench/ (docs/benchmarks.md) on JSON values of 100 B to 10 KB: with zstandard the archive stores
# 0.21-0.29 of the payload and the handler runs within 10-16% of its speed with snappy, which stores 0.32-0.46.
# deflate stores up to 11% less (at 10 KB; 3% more at 100 B) but makes the whole handler 1.4-4 times slower.
DEFAULT_CODEC: Codec = "zstandard"
DEFAULT_PREFIX = "topics/"
DEFAULT_TIME_PATTERN = "year=%Y/month=%m/day=%d/hour=%H"
DEAD_LETTER_PREFIX = "dead-letter/"

# strftime directives that yield only digits, so a pattern can never produce an unsafe path.
TIME_DIRECTIVES = ("%Y", "%m", "%d", "%H", "%M")
MAX_PREFIX_LENGTH = 256
MAX_TIME_PATTERN_LENGTH = 64
MAX_FIELD_NAME_LENGTH = 64

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SAFE_PREFIX = re.compile(r"^([A-Za-z0-9_.=-]+/)*$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATTERN_LITERAL = re.compile(r"^[A-Za-z0-9_=/-]*$")


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
    codec: Codec = DEFAULT_CODEC
    # Typed archives (docs/typed-archives.md): per-topic value formats as JSON text, and where their .avsc live.
    value_formats: str | None = None
    value_schemas_dir: str | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _value_formats: ValueFormats = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once: it reads and parses every .avsc file the formats name.
        value_formats, format_problems = parse_value_formats(self.value_formats, self.value_schemas_dir)
        problems = _problems(self, format_problems)
        if problems:
            raise SettingsError(problems)
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_value_formats", value_formats)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

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
    "codec": "AVRO_CODEC",
    "value_formats": "VALUE_FORMATS",
    "value_schemas_dir": "VALUE_SCHEMAS_DIR",
}
REQUIRED_ENV = (ENV_NAMES["archive_bucket"], ENV_NAMES["dead_letter_queue_url"])


def _problems(settings: Settings, value_format_problems: list[str]) -> list[str]:
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

    pattern_problem = _time_pattern_problem(settings.time_pattern)
    if pattern_problem:
        bad("time_pattern", pattern_problem)
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        bad("timezone", f"must be an IANA time zone such as 'UTC' or 'Europe/Berlin'; got {settings.timezone!r}")

    name = settings.partition_field
    if settings.partitioner == "field" and not name:
        bad("partition_field", "is required when PARTITIONER is 'field'")
    if name is not None and (len(name) > MAX_FIELD_NAME_LENGTH or not _FIELD_NAME.match(name)):
        bad("partition_field", f"must be an identifier (A-Z a-z 0-9 _, at most {MAX_FIELD_NAME_LENGTH}); got {name!r}")
    for problem in value_format_problems:
        bad("value_formats", problem)
    return problems


def _is_deploy_time_reference(value: str) -> bool:
    """True for a CDK token (e.g. a bucket name CloudFormation will choose): it is checked at deploy time."""
    return "${Token[" in value


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))


def _time_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a safe time pattern, or None. Only digit-producing directives are allowed."""
    allowed = ", ".join(TIME_DIRECTIVES)
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
    if "//" in pattern or _has_dot_segment(pattern):
        return f"must not contain empty or dot segments; got {pattern!r}"
    return None
