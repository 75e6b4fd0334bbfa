"""A Glue Data Catalog database and one Athena-ready table per archived topic, with partition projection.

Each table reads ``s3://<bucket>/<archive prefix><topic>/`` with Hive's AvroSerDe: a raw topic with the envelope
schema (``archiver/schemas/envelope.avsc``, what the function writes raw records with), a typed topic with its typed
archive schema (``archiver.values.archive_schema``, the same code the function writes with), as
``avro.schema.literal``. Partition projection is generated from the archive's layout (``archiver.layout``), whatever
it is, so Athena computes partition locations itself: no crawler, no ``MSCK REPAIR``, no partition writes from the
function. Per segment:

* time: a part with one directive (``hour=%H``) is an ``integer`` with fixed digits, one with several
  (``dt=%Y-%m-%d``) a ``date`` in the equivalent Java format;
* the Kafka partition: an ``integer`` from 0 to ``kafka_partitions`` - 1;
* a key bucket: an ``enum`` of the buckets and the NULL partition (records without a key);
* a field, a header or the key's value: ``injected`` (values cannot be known in advance; a query names them in an
  equality, e.g. ``WHERE country = 'DE'``, and ``'__HIVE_DEFAULT_PARTITION__'`` for the NULL partition).

Built on aws-cdk-lib's own Glue L2 (``glue.Database``, ``glue.S3Table``, ``PartitionProjectionConfiguration``).
One escape hatch: the L2 cannot set SerDe parameters, and AvroSerDe reads ``avro.schema.literal`` there (it is
also set as a table parameter, where Hive and Athena read it too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

import infra  # noqa: F401  (puts functions/archiver on sys.path)
from archiver.encoding import load_envelope_schema
from archiver.layout import DEFAULT_TIME_PATTERN, KeySegment, PartitionSegment, Segment, TimeSegment
from archiver.partitioning import NULL_PARTITION, encode_topic
from archiver.values.archive_schema import typed_archive_schema
from infra.glue_names import column_name, table_name_for, time_columns

AvroSchema = Mapping[str, Any] | Sequence[Any] | str

# Integer projection per single-directive segment: (min, max, digits).
_INTEGER = {"%Y": (2000, 2099, 4), "%m": (1, 12, 2), "%d": (1, 31, 2), "%H": (0, 23, 2), "%M": (0, 59, 2)}
# strftime directive -> Java DateTimeFormatter pattern, and the step unit when it is the finest directive.
_JAVA = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm"}
_UNITS = {
    "%M": glue.DateIntervalUnit.MINUTES,
    "%H": glue.DateIntervalUnit.HOURS,
    "%d": glue.DateIntervalUnit.DAYS,
    "%m": glue.DateIntervalUnit.MONTHS,
    "%Y": glue.DateIntervalUnit.YEARS,
}
_PRIMITIVES = {
    "null": "void",
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "string": "string",
}
_FIRST_DAY = datetime(2000, 1, 1)


@dataclass(frozen=True, kw_only=True)
class TopicTable:
    """One archived topic: its name and the Avro schema its values are read with (reader schema or JSON schema), or
    None for a raw topic (the envelope's value bytes)."""

    topic: str
    value_schema: AvroSchema | None = None
    table_name: str | None = None  # default: the topic, lower-cased, with anything but a-z 0-9 _ as "_"


TypedTopicTable = TopicTable  # the name of earlier versions, when only typed topics had tables

# The projection of a Kafka partition segment covers partitions 0 to this - 1 unless the stack says otherwise.
DEFAULT_KAFKA_PARTITIONS = 64


@dataclass(frozen=True)
class ProjectedColumn:
    name: str
    projection: glue.PartitionProjectionConfiguration


class ArchiveCatalog(Construct):
    """Glue database + one AvroSerDe table per archived topic, partition projection following the layout.

    Attributes: ``database``, ``tables`` (topic -> ``glue.S3Table``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database_name: str,
        bucket: s3.IBucket,
        archive_prefix: str,
        topics: Sequence[TopicTable],
        segments: Sequence[Segment] = (TimeSegment(),),
        kafka_partitions: int = DEFAULT_KAFKA_PARTITIONS,
    ) -> None:
        super().__init__(scope, construct_id)
        columns, template = projection_for_layout(segments, kafka_partitions=kafka_partitions)
        self.database = glue.Database(self, "Database", database_name=database_name)
        self.tables: dict[str, glue.S3Table] = {}
        for item in topics:
            location = f"{archive_prefix}{encode_topic(item.topic)}/"
            if item.value_schema is None:
                schema, kind = load_envelope_schema(), "Raw"
            else:
                schema, kind = typed_archive_schema(_plain(item.value_schema)), "Typed"
            literal = json.dumps(schema, separators=(",", ":"))
            table = glue.S3Table(
                self,
                f"Table-{item.topic}",
                database=self.database,
                table_name=item.table_name or table_name_for(item.topic),
                description=f"{kind} archive of Kafka topic {item.topic}",
                storage=glue.S3TableStorage.from_bucket(bucket),
                s3_prefix=location,
                data_format=glue.DataFormat.AVRO,
                # The L2 defaults has_encrypted_data to true, which tells Athena the objects are client-side (CSE-KMS)
                # encrypted. The archive is SSE-S3 or SSE-KMS, which S3 decrypts itself: Athena needs no table
                # property for that ("Create tables based on encrypted datasets in Amazon S3", Athena user guide).
                has_encrypted_data=False,
                columns=[
                    glue.Column(name=field["name"], type=_column_type(hive_type(field["type"])))
                    for field in json.loads(literal)["fields"]
                ],
                partition_keys=[glue.Column(name=column.name, type=glue.Schema.STRING) for column in columns],
                partition_projection={column.name: column.projection for column in columns},
                parameters={
                    "avro.schema.literal": literal,
                    "storage.location.template": f"s3://{bucket.bucket_name}/{location}{template}",
                    "classification": "avro",
                },
            )
            cfn = table.node.default_child
            assert isinstance(cfn, glue.CfnTable)
            cfn.add_property_override(
                "TableInput.StorageDescriptor.SerdeInfo",
                {
                    "SerializationLibrary": glue.SerializationLibrary.AVRO.class_name,
                    "Parameters": {"avro.schema.literal": literal},
                },
            )
            self.tables[item.topic] = table


def projection_for_layout(
    segments: Sequence[Segment], *, kafka_partitions: int = DEFAULT_KAFKA_PARTITIONS
) -> tuple[list[ProjectedColumn], str]:
    """Partition columns with their projections, and the location template after ``<prefix><topic>/``."""
    columns: list[ProjectedColumn] = []
    parts: list[str] = []
    for segment in segments:
        if isinstance(segment, TimeSegment):
            time_projected, template = projection_for(segment.pattern)
            columns += time_projected
            parts.append(template)
            continue
        name = column_name(segment.label)
        if isinstance(segment, PartitionSegment):
            projection = glue.PartitionProjectionConfiguration.integer(min=0, max=kafka_partitions - 1)
        elif isinstance(segment, KeySegment) and segment.buckets is not None:
            values = [*map(str, range(segment.buckets)), NULL_PARTITION]
            projection = glue.PartitionProjectionConfiguration.enum(values=values)
        else:
            projection = glue.PartitionProjectionConfiguration.injected()
        columns.append(ProjectedColumn(name=name, projection=projection))
        parts.append(f"{segment.label}=${{{name}}}")
    return columns, "/".join(parts)


def projection_for(time_pattern: str = DEFAULT_TIME_PATTERN) -> tuple[list[ProjectedColumn], str]:
    """Partition columns with their projections, and the location template, for a validated time pattern.

    A segment that is one directive (``hour=%H`` or ``%H``) projects as an integer with fixed digits; a segment with
    several (``dt=%Y-%m-%d``) as a date in the equivalent Java format. The column is named by the segment's
    ``name=`` (else by its directive), and the template puts ``${column}`` where the value was.
    """
    columns: list[ProjectedColumn] = []
    named = {part: (label, name) for part, label, name in time_columns(TimeSegment(pattern=time_pattern))}
    segments: list[str] = []
    for part in time_pattern.split("/"):
        if part not in named:
            segments.append(part)  # a literal folder
            continue
        label, name = named[part]
        value = part[len(label) :]
        directives = re.findall(r"%[YmdHM]", value)
        if len(directives) == 1 and value == directives[0]:
            low, high, digits = _INTEGER[value]
            projection = glue.PartitionProjectionConfiguration.integer(min=low, max=high, digits=digits)
        else:
            projection = glue.PartitionProjectionConfiguration.date(
                format=_java_format(value),
                min=_FIRST_DAY.strftime(value),
                max="NOW",
                step=glue.DateProjectionStep(interval=1, interval_unit=_UNITS[_finest(directives)]),
            )
        columns.append(ProjectedColumn(name=name, projection=projection))
        segments.append(f"{label}${{{name}}}")
    return columns, "/".join(segments)


def hive_type(schema: Any, named: dict[str, Any] | None = None) -> str:
    """The Hive/Athena column type that AvroSerDe gives an Avro type (named types resolved as they appear)."""
    named = {} if named is None else named
    if isinstance(schema, str):
        return _PRIMITIVES.get(schema) or hive_type(named[schema], named)
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        if len(branches) == 1:
            return hive_type(branches[0], named)  # nullable X is X: every Hive column is nullable
        return f"uniontype<{','.join(hive_type(branch, named) for branch in branches)}>"
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
        if schema.get("namespace"):
            named[f"{schema['namespace']}.{schema['name']}"] = schema
    logical = schema.get("logicalType")
    if logical == "decimal":
        return f"decimal({schema['precision']},{schema.get('scale', 0)})"
    if logical == "date" and kind == "int":
        return "date"
    if kind == "record":
        return f"struct<{','.join(f'{f["name"]}:{hive_type(f["type"], named)}' for f in schema['fields'])}>"
    if kind == "array":
        return f"array<{hive_type(schema['items'], named)}>"
    if kind == "map":
        return f"map<string,{hive_type(schema['values'], named)}>"
    if kind == "enum":
        return "string"
    if kind == "fixed":
        return "binary"
    # Timestamps stay bigint (milliseconds): what every AvroSerDe version agrees on. from_unixtime(ts / 1e3) in SQL.
    return hive_type(kind, named)


def _plain(schema: AvroSchema) -> Any:
    return json.loads(json.dumps(schema))


def _java_format(value: str) -> str:
    parts = re.split(r"(%[YmdHM])", value)
    # Letters in a literal would be pattern letters to Java: quote them.
    return "".join(_JAVA.get(part) or (f"'{part}'" if re.search("[A-Za-z]", part) else part) for part in parts)


def _finest(directives: list[str]) -> str:
    return min(directives, key=list(_UNITS).index)  # _UNITS lists the finest directive first


def _column_type(text: str) -> glue.Type:
    # Type is a jsii struct interface (no constructor in Python); Schema.custom is its documented factory.
    return glue.Schema.custom(text)
