"""Tables for every topic, with partition projection generated from the layout: the keys the function really writes
(moto S3) parse under each table's storage.location.template, with values the projection accepts; the layouts
example synthesizes clean (cdk-nag, cfn-lint) with the grants storage class and tags need."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from archiver.encoding import load_envelope_schema
from archiver.settings import Settings
from infra.catalog import ArchiveCatalog, TopicTable, hive_type
from tests.infra.conftest import Synthesized, as_list, example, problems_of, with_changes
from tests.infra.test_cfn_lint import findings
from tests.kafka_events import kafka_event, kafka_record
from tests.unit.aws_fakes import FakeAws, make_archiver

Synth = Callable[..., Synthesized]
NULL = "__HIVE_DEFAULT_PARTITION__"

ALL_KINDS = [
    {"kind": "field", "field": "customer.country", "name": "country"},
    {"kind": "header", "header": "tenant"},
    {"kind": "key", "buckets": 4},
    {"kind": "key", "name": "k"},
    {"kind": "partition"},
    {"kind": "time", "pattern": "dt=%Y-%m-%d/%H"},
    {"kind": "time", "field": "created_at", "pattern": "cy=%Y/cm=%m", "timezone": "Asia/Kolkata"},
]
LAYOUTS: dict[str, dict[str, Any]] = {
    "default": {},
    "time": {"partitioner": "time"},
    "time-date": {"partitioner": "time", "time_pattern": "dt=%Y%m%d/%H%M"},
    "field": {"partitioner": "field", "partition_field": "customer.country"},
    "all-kinds": {"partitioner": "segments", "partition_segments": json.dumps(ALL_KINDS)},
}


def table_parameters(settings: Settings, topic: str) -> dict[str, Any]:
    stack = cdk.Stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Archive", "archive-bucket")
    ArchiveCatalog(
        stack,
        "Catalog",
        database_name="kafka_archive",
        bucket=bucket,
        archive_prefix=settings.archive_prefix,
        topics=[TopicTable(topic=topic)],
        segments=settings.segments,
        kafka_partitions=8,
    )
    (table,) = Template.from_stack(stack).find_resources("AWS::Glue::Table").values()
    parameters: dict[str, Any] = table["Properties"]["TableInput"]["Parameters"]
    return parameters


def template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{(\w+)\}", template)
    pattern = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)" for index, part in enumerate(parts))
    return re.compile(pattern)


def java_to_strftime(java: str) -> str:
    text = re.sub(r"'([^']*)'", r"\1", java)
    for java_part, python in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M")):
        text = text.replace(java_part, python)
    return text


def projected(parameters: dict[str, Any], column: str, value: str) -> bool:
    """Whether Athena's projection of ``column`` would produce ``value``."""
    kind = parameters[f"projection.{column}.type"]
    if kind == "injected":
        return True  # any value a query names
    if kind == "enum":
        return value in parameters[f"projection.{column}.values"].split(",")
    if kind == "integer":
        low, high = map(int, parameters[f"projection.{column}.range"].split(","))
        digits = int(parameters.get(f"projection.{column}.digits", "1"))
        return value.isdigit() and low <= int(value) <= high and len(value) == max(digits, len(str(int(value))))
    assert kind == "date", kind
    date_format = java_to_strftime(parameters[f"projection.{column}.format"])
    try:
        moment = datetime.strptime(value, date_format)
    except ValueError:
        return False
    return moment >= datetime.strptime(parameters[f"projection.{column}.range"].split(",")[0], date_format)


def records_for_every_case() -> list[dict[str, Any]]:
    """Records that reach every branch of every segment: present and missing fields, headers and keys, times
    inside and outside the calendar, several partitions."""
    values = [
        {"customer": {"country": "DE"}, "created_at": "2026-11-29T10:00:00Z"},
        {"customer": {"country": "São Paulo/..", "x": 1}, "created_at": 1_795_908_600_000},
        {"customer": {}, "created_at": None},
        {"created_at": 1e300},
    ]
    found = []
    for offset in range(12):
        found.append(
            kafka_record(
                "orders.eu-1",
                offset % 3,
                offset,
                value=json.dumps(values[offset % len(values)]).encode() if offset != 11 else None,
                key=None if offset % 5 == 0 else f"user-{offset}".encode(),
                headers=[("tenant", b"acme")] if offset % 2 else [],
                timestamp=2**62 if offset == 7 else 1_795_908_600_000 + offset * 3_600_000,
            )
        )
    return found


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_keys_the_function_writes_parse_under_the_projection(aws: FakeAws, layout: str) -> None:
    overrides = LAYOUTS[layout]
    archiver = make_archiver(aws, **overrides)
    summary = archiver.archive(kafka_event(records_for_every_case()))
    assert summary.records_archived == 12
    settings = Settings(archive_bucket="archive-bucket", dead_letter_queue_url="https://sqs.example/q", **overrides)
    parameters = table_parameters(settings, "orders.eu-1")
    assert parameters["projection.enabled"] == "true"
    pattern = template_regex(parameters["storage.location.template"])
    keys = aws.keys("topics/")
    assert len(keys) >= 2
    matched = 0
    for key in keys:
        location = f"s3://archive-bucket/{key.rsplit('/', 1)[0]}"
        match = pattern.fullmatch(location)
        time_is_null = re.search(r"(dt|cy|cm|year|month|day|hour)=" + NULL, location) or f"/{NULL}" in location
        if time_is_null:
            # Documented: the NULL time partition is not projected (docs/configuration.md, catalog table).
            assert match is None or not all(projected(parameters, c, v) for c, v in match.groupdict().items()), key
            continue
        assert match is not None, (key, parameters["storage.location.template"])
        for column, value in match.groupdict().items():
            assert projected(parameters, column, value), (key, column, value)
        matched += 1
    assert matched >= 2


def test_a_raw_topic_table_reads_the_envelope_schema(aws: FakeAws) -> None:
    parameters = table_parameters(Settings(archive_bucket="archive-bucket", dead_letter_queue_url="https://q/x"), "t")
    assert json.loads(parameters["avro.schema.literal"]) == load_envelope_schema()


def test_the_layouts_example_has_a_table_per_raw_topic_and_synthesizes_clean(synth: Synth) -> None:
    result = synth(example("layouts"))  # cdk-nag: raises on any unacknowledged finding
    assert findings(result) == []  # cfn-lint
    found = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in result.resources("AWS::Glue::Table").values()
    }
    assert sorted(found) == ["orders", "payments"]
    orders = found["orders"]
    assert [c["Name"] for c in orders["PartitionKeys"]] == ["country", "year", "month", "day"]
    columns = {c["Name"]: c["Type"] for c in orders["StorageDescriptor"]["Columns"]}
    assert columns == {f["name"]: hive_type(f["type"]) for f in load_envelope_schema()["fields"]}
    parameters = orders["Parameters"]
    assert parameters["projection.country.type"] == "injected"
    assert parameters["projection.year.type"] == "integer"
    template = parameters["storage.location.template"]
    assert json.dumps(template).endswith('/topics/orders/country=${country}/year=${year}/month=${month}/day=${day}"]]}')


def test_the_function_gets_the_layout_storage_class_and_tags_and_may_tag_only_archive_objects(synth: Synth) -> None:
    result = synth(example("layouts"))
    env = result.only("AWS::Lambda::Function")["Environment"]["Variables"]
    archive = example("layouts")["archive"]
    assert json.loads(env["PARTITION_SEGMENTS"]) == archive["partitionSegments"]
    assert env["PARTITIONER"] == "segments"
    assert env["STORAGE_CLASS"] == "INTELLIGENT_TIERING"
    assert json.loads(env["OBJECT_TAGS"]) == archive["objectTags"]
    function_tagging = [
        s for s in result.statements_for("s3:PutObjectTagging") if "s3:GetObjectTagging" not in as_list(s["Action"])
    ]
    (statement,) = function_tagging
    assert json.dumps(statement["Resource"]).endswith('"/topics/*"]]}')


def test_without_tags_the_function_gets_no_tagging_permission(synth: Synth) -> None:
    result = synth(with_changes(example("layouts"), {"archive.objectTags": None, "maintenance": None}))
    assert "OBJECT_TAGS" not in result.only("AWS::Lambda::Function")["Environment"]["Variables"]
    function_role_tagging = [
        s for s in result.statements_for("s3:PutObjectTagging") if "s3:DeleteObject" not in as_list(s["Action"])
    ]
    assert function_role_tagging == []


def test_the_compaction_worker_may_read_and_write_tags(synth: Synth) -> None:
    maintenance = synth(example("layouts")).stack.maintenance
    assert maintenance is not None
    statements = [
        statement
        for policy in Template.from_stack(maintenance).find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (worker,) = [s for s in statements if "s3:DeleteObject" in as_list(s["Action"])]
    assert {"s3:GetObjectTagging", "s3:PutObjectTagging"} <= set(as_list(worker["Action"]))


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"archive.storageClass": "GLACIER"}, "archive.storageClass", "needs a restore before any GET"),
        ({"archive.storageClass": "DEEP_ARCHIVE"}, "archive.storageClass", "unreadable to Athena"),
        ({"archive.objectTags": {"aws:x": "y"}}, "archive.objectTags", "must not start with 'aws:'"),
        ({"archive.objectTags": {f"t{n}": "v" for n in range(11)}}, "archive.objectTags", "at most 10"),
        ({"archive.objectTags": {"a": 1}}, "archive.objectTags.a", "must be a string"),
        ({"archive.partitionSegments": []}, "archive.partitionSegments", "1 to 8 segments"),
        (
            {"archive.partitionSegments": [{"kind": "fields"}]},
            "archive.partitionSegments[0]",
            'must have a \'kind\', one of field, header, key, partition, time; got {"kind": "fields"}',
        ),
        ({"archive.partitionSegments": [{"field": "a"}]}, "archive.partitionSegments[0]", "must have a 'kind'"),
        (
            {"archive.partitionSegments": [{"kind": "time", "timezone": "Mars"}]},
            "archive.partitionSegments[0].timezone",
            "IANA time zone",
        ),
        (
            {"archive.partitionSegments": [{"kind": "field", "field": "a", "colour": 1}]},
            "archive.partitionSegments[0].colour",
            "",
        ),
        (
            {"archive.partitionSegments": [{"kind": "key", "buckets": "4"}]},
            "archive.partitionSegments[0].buckets",
            "whole number",
        ),
        (
            {"archive.partitionSegments": [{"kind": "partition"}, {"kind": "partition"}]},
            "archive.partitionSegments",
            "repeats the label(s) 'partition'",
        ),
        ({"archive.partitioner": "time"}, "archive.partitionSegments", "only applies when partitioner is 'segments'"),
        (
            {"archive.partitionSegments": None},
            "archive.partitionSegments",
            "is required when partitioner is 'segments'",
        ),
        ({"archive.timePattern": "%Y"}, "archive.timePattern", "only applies when partitioner is 'time'"),
        ({"catalog.kafkaPartitions": 0}, "catalog.kafkaPartitions", "from 1 to 10000"),
        (
            {
                "archive.prefix": "p" * 200 + "/",
                "archive.partitionSegments": [
                    {"kind": "field", "field": f"f{n}", "name": "n" * 60 + str(n)} for n in range(6)
                ],
            },
            "archive.partitionSegments",
            "could be",
        ),
    ],
)
def test_bad_layout_settings_fail_synth_naming_the_field(changes: dict[str, Any], field: str, words: str) -> None:
    problems = problems_of(with_changes(example("layouts"), changes))
    assert any(problem.startswith(f"{field}: ") and words in problem for problem in problems), problems
