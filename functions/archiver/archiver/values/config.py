"""Per-topic value formats: the ``VALUE_FORMATS`` JSON -> typed, validated ``TopicFormat`` objects.

``VALUE_FORMATS`` maps topic names to a format; topics not listed are archived ``raw`` (the envelope with the value
bytes, as before typed archives existed)::

    {"orders":   {"format": "json", "schema": "orders.avsc"},
     "payments": {"format": "avro-confluent", "registryUrl": "https://registry.example.com",
                  "registryAuthSecretArn": "arn:aws:secretsmanager:...:secret:registry-auth",
                  "readerSchema": "payments.avsc"},
     "clicks":   {"format": "avro-glue", "registryArn": "arn:aws:glue:eu-west-1:123456789012:registry/streams",
                  "esmRecordFormat": "SOURCE"}}

``.avsc`` names are file names inside ``VALUE_SCHEMAS_DIR`` (default: ``value_schemas/`` next to ``handler.py``,
i.e. shipped in the Lambda asset). ``parse_value_formats`` names every problem at once, like ``Settings`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import fastavro
from fastavro.schema import SchemaParseException

ValueFormat = Literal["raw", "json", "avro-confluent", "avro-glue"]
EsmRecordFormat = Literal["SOURCE", "JSON"]

VALUE_FORMATS: tuple[str, ...] = get_args(ValueFormat)
ESM_RECORD_FORMATS: tuple[str, ...] = get_args(EsmRecordFormat)
# The folder shipped in the Lambda asset: functions/archiver/value_schemas/ (the asset root is functions/archiver).
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "value_schemas"

# Which keys each format accepts, and which of them it requires.
_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "raw": (frozenset({"format"}), frozenset()),
    "json": (frozenset({"format", "schema"}), frozenset({"schema"})),
    "avro-confluent": (
        frozenset({"format", "registryUrl", "registryAuthSecretArn", "readerSchema", "esmRecordFormat"}),
        frozenset({"registryUrl"}),
    ),
    "avro-glue": (
        frozenset({"format", "registryArn", "readerSchema", "esmRecordFormat"}),
        frozenset({"registryArn"}),
    ),
}
KAFKA_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's own rule for topic names (infra uses it too)
_SCHEMA_FILE = re.compile(r"^[A-Za-z0-9_.-]{1,128}\.avsc$")
_REGISTRY_URL = re.compile(r"^https?://[^\s/?#@]+(/[^\s?#]*)?$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_GLUE_REGISTRY_ARN = re.compile(r"^arn:(aws[a-z-]*):glue:([a-z0-9-]+):(\d{12}):registry/([A-Za-z0-9_$#.-]{1,255})$")


@dataclass(frozen=True, kw_only=True)
class TopicFormat:
    """How one topic's values are decoded. ``schema`` and ``reader_schema`` hold the parsed ``.avsc`` JSON."""

    topic: str
    format: ValueFormat
    schema_file: str | None = None
    schema: dict[str, Any] | list[Any] | str | None = None
    registry_url: str | None = None
    registry_auth_secret_arn: str | None = None
    registry_arn: str | None = None
    reader_schema_file: str | None = None
    reader_schema: dict[str, Any] | list[Any] | str | None = None
    esm_record_format: EsmRecordFormat = "SOURCE"

    @property
    def typed(self) -> bool:
        return self.format != "raw"

    @property
    def registry_region(self) -> str | None:
        """The region of a Glue registry ARN (the Glue client must call that region)."""
        match = _GLUE_REGISTRY_ARN.match(self.registry_arn or "")
        return match.group(2) if match else None

    @property
    def archive_value_schema(self) -> dict[str, Any] | list[Any] | str | None:
        """The value schema a query engine should read with: the reader schema, else the JSON format's schema."""
        return self.reader_schema if self.reader_schema is not None else self.schema


ValueFormats = dict[str, TopicFormat]


def parse_value_formats(text: str | None, schemas_dir: str | None) -> tuple[ValueFormats, list[str]]:
    """``VALUE_FORMATS`` text -> (formats of the typed topics, every problem found). Raw topics are left out."""
    if not text:
        return {}, []
    try:
        document = json.loads(text)
    except ValueError as error:
        return {}, [f"must be a JSON object of topic -> format settings; it is not JSON ({error})"]
    if not isinstance(document, dict):
        return {}, [f"must be a JSON object of topic -> format settings, got {type(document).__name__}"]
    directory = Path(schemas_dir) if schemas_dir else DEFAULT_SCHEMAS_DIR
    formats: ValueFormats = {}
    problems: list[str] = []
    for topic, entry in document.items():
        parsed = _topic_format(topic, entry, directory, problems)
        if parsed is not None and parsed.typed:
            formats[topic] = parsed
    return formats, problems


def canonical_value_formats(document: Mapping[str, Mapping[str, str]]) -> str:
    """The ``VALUE_FORMATS`` text for ``document`` (sorted, compact), e.g. for infra to build ``Settings`` with."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _topic_format(topic: str, entry: object, directory: Path, problems: list[str]) -> TopicFormat | None:
    start = len(problems)

    def bad(message: str) -> None:
        problems.append(f"[{topic!r}] {message}")

    if not KAFKA_TOPIC_NAME.match(topic):
        bad("is not a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)")
    if not isinstance(entry, dict):
        bad(f'must be an object such as {{"format": "json", "schema": "orders.avsc"}}, got {entry!r}')
        return None
    value_format = entry.get("format")
    if value_format not in VALUE_FORMATS:
        bad(f"format must be one of {', '.join(VALUE_FORMATS)}; got {value_format!r}")
        return None
    allowed, required = _KEYS[value_format]
    for name in sorted(set(entry) - allowed):
        bad(f"{name!r} is not a setting of format {value_format!r} (valid: {', '.join(sorted(allowed))})")
    blocking = len(problems)  # unknown keys are reported, but do not stop the checks of the known ones
    for name in sorted(required - set(entry)):
        bad(f"{name!r} is required for format {value_format!r}")
    for name, value in entry.items():
        if name in allowed and not isinstance(value, str):
            bad(f"{name!r} must be a string, got {value!r}")
    if len(problems) > blocking:
        return None

    url = entry.get("registryUrl")
    if url is not None and not _REGISTRY_URL.match(url):
        bad(f"registryUrl must be an http(s) URL without credentials, query or fragment; got {url!r}")
    secret = entry.get("registryAuthSecretArn")
    if secret is not None and not _SECRET_ARN.match(secret):
        bad(f"registryAuthSecretArn must be a Secrets Manager secret ARN; got {secret!r}")
    registry_arn = entry.get("registryArn")
    if registry_arn is not None and not _GLUE_REGISTRY_ARN.match(registry_arn):
        bad(
            "registryArn must be a Glue registry ARN (arn:aws:glue:<region>:<account>:registry/<name>); "
            f"got {registry_arn!r}"
        )
    esm_format = entry.get("esmRecordFormat", "SOURCE")
    if esm_format not in ESM_RECORD_FORMATS:
        bad(f"esmRecordFormat must be one of {', '.join(ESM_RECORD_FORMATS)}; got {esm_format!r}")
    schema = _schema(entry.get("schema"), "schema", directory, bad)
    reader_schema = _schema(entry.get("readerSchema"), "readerSchema", directory, bad)
    if len(problems) > start:
        return None
    return TopicFormat(
        topic=topic,
        format=value_format,
        schema_file=entry.get("schema"),
        schema=schema,
        registry_url=url.rstrip("/") if url else None,
        registry_auth_secret_arn=secret,
        registry_arn=registry_arn,
        reader_schema_file=entry.get("readerSchema"),
        reader_schema=reader_schema,
        esm_record_format=esm_format,
    )


def _schema(name: str | None, setting: str, directory: Path, bad: Any) -> Any:
    """Load and check one ``.avsc`` file; report (not raise) anything wrong with it."""
    if name is None:
        return None
    if not _SCHEMA_FILE.match(name) or name.startswith("."):
        bad(f"{setting} must be a file name ending in .avsc (A-Z a-z 0-9 _ . -, no folders); got {name!r}")
        return None
    path = directory / name
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        bad(f"{setting} {name!r} is not a readable file in VALUE_SCHEMAS_DIR ({directory})")
        return None
    except ValueError as error:
        bad(f"{setting} {name!r} is not JSON: {error}")
        return None
    try:
        fastavro.parse_schema(document)
    except (SchemaParseException, ValueError, TypeError, KeyError, AttributeError) as error:
        bad(f"{setting} {name!r} is not a valid Avro schema: {error}")
        return None
    return document
