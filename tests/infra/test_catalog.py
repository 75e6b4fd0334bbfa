"""ArchiveCatalog in a bare stack: database, one AvroSerDe table per typed topic, projection = the time pattern."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk  # tests/infra/conftest.py has put the pinned Node on PATH
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from archiver.layout import TimeSegment
from archiver.values.archive_schema import typed_archive_schema
from infra.catalog import ArchiveCatalog, TypedTopicTable, hive_type, projection_for
from tests.typed.schemas import ORDER_V2


def synth(**props: Any) -> Template:
    stack = cdk.Stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Archive", "my-archive")
    ArchiveCatalog(stack, "Catalog", database_name="kafka_archive", bucket=bucket, archive_prefix="topics/", **props)
    return Template.from_stack(stack)


def tables(template: Template) -> dict[str, Any]:
    found = template.find_resources("AWS::Glue::Table")
    return {item["Properties"]["TableInput"]["Name"]: item["Properties"]["TableInput"] for item in found.values()}


def test_one_avro_table_per_typed_topic_with_hourly_projection() -> None:
    template = synth(
        topics=[
            TypedTopicTable(topic="orders.eu-1", value_schema=ORDER_V2),
            TypedTopicTable(topic="clicks", value_schema="string"),
        ]
    )

    template.resource_count_is("AWS::Glue::Database", 1)
    template.has_resource_properties("AWS::Glue::Database", {"DatabaseInput": {"Name": "kafka_archive"}})
    found = tables(template)
    assert sorted(found) == ["clicks", "orders_eu_1"]
    orders = found["orders_eu_1"]
    literal = orders["Parameters"]["avro.schema.literal"]
    assert json.loads(literal) == typed_archive_schema(ORDER_V2)  # exactly what the function writes with
    assert orders["StorageDescriptor"]["SerdeInfo"] == {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
        "Parameters": {"avro.schema.literal": literal},
    }
    assert orders["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat"
    assert orders["StorageDescriptor"]["Location"] == "s3://my-archive/topics/orders.eu-1/"
    assert [c["Name"] for c in orders["PartitionKeys"]] == ["year", "month", "day", "hour"]
    parameters = orders["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["storage.location.template"] == (
        "s3://my-archive/topics/orders.eu-1/year=${year}/month=${month}/day=${day}/hour=${hour}"
    )
    assert (parameters["projection.year.type"], parameters["projection.year.range"]) == ("integer", "2000,2099")
    assert (parameters["projection.month.range"], parameters["projection.month.digits"]) == ("1,12", "2")
    assert (parameters["projection.hour.range"], parameters["projection.hour.digits"]) == ("0,23", "2")
    columns = {c["Name"]: c["Type"] for c in orders["StorageDescriptor"]["Columns"]}
    assert columns == {
        "topic": "string",
        "partition": "int",
        "offset": "bigint",
        "timestamp": "bigint",
        "timestamp_raw": "bigint",  # envelope v2 (docs/schema.md): timestamps outside years 1-9999
        "timestamp_type": "string",
        "key": "binary",
        "value": "struct<order_id:bigint,country:string,amount:double,note:string,status:string,"
        "items:array<string>,channel:string>",
        "value_schema_id": "string",
        "headers": "array<struct<key:string,value:binary>>",
    }
    assert {c["Name"]: c["Type"] for c in found["clicks"]["StorageDescriptor"]["Columns"]}["value"] == "string"


def test_a_date_segment_projects_as_a_date() -> None:
    template = synth(
        topics=[TypedTopicTable(topic="t", value_schema="long")], segments=[TimeSegment(pattern="dt=%Y-%m-%d/%H")]
    )

    parameters = tables(template)["t"]["Parameters"]
    assert parameters["storage.location.template"] == "s3://my-archive/topics/t/dt=${dt}/${hour}"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert parameters["projection.dt.range"] == "2000-01-01,NOW"
    assert (parameters["projection.dt.interval"], parameters["projection.dt.interval.unit"]) == ("1", "DAYS")
    assert parameters["projection.hour.type"] == "integer"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "map", "values": ["null", "int"]}, "map<string,int>"),
        (["string", "long"], "uniontype<string,bigint>"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}, "decimal(9,2)"),
        ({"type": "int", "logicalType": "date"}, "date"),
        ({"type": "fixed", "name": "Md5", "size": 16}, "binary"),
    ],
)
def test_hive_types(schema: Any, expected: str) -> None:
    assert hive_type(schema) == expected


def test_named_types_are_resolved_by_reference() -> None:
    point = {"type": "record", "name": "Point", "namespace": "geo", "fields": [{"name": "x", "type": "double"}]}
    line = {
        "type": "record",
        "name": "Line",
        "fields": [{"name": "a", "type": point}, {"name": "b", "type": "geo.Point"}],
    }
    assert hive_type(line) == "struct<a:struct<x:double>,b:struct<x:double>>"


def test_projection_columns_follow_the_pattern() -> None:
    columns, template = projection_for("year=%Y/month=%m/day=%d/hour=%H/minute=%M")
    assert [c.name for c in columns] == ["year", "month", "day", "hour", "minute"]
    assert template.endswith("minute=${minute}")
