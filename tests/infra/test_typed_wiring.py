"""Typed archives wired into config and stack: VALUE_FORMATS in the function's environment, registry grants scoped to
the configured ARNs, the Glue catalog only when configured, and bad typed configs rejected naming field and fix.

Synthesized stacks come from the session cache (conftest.synth): the `typed` example plus one variant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from archiver.settings import ENV_NAMES, Settings
from archiver.values.archive_schema import typed_archive_schema
from archiver.values.config import DEFAULT_SCHEMAS_DIR, canonical_value_formats
from infra.config import MAX_VALUE_FORMATS_BYTES, table_name_for
from infra.registries import SID_GLUE, SID_SECRETS, SID_SECRETS_KEY
from tests.infra.conftest import Synthesized, as_list, assert_problem, example, problems_of, with_changes
from tests.infra.test_catalog import tables
from tests.infra.test_nag import acknowledgments

Synth = Callable[..., Synthesized]

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-auth-AbCdEf"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
REGISTRY = "arn:aws:glue:eu-west-1:123456789012:registry/streams"
OTHER_REGISTRY = "arn:aws:glue:us-east-1:123456789012:registry/us-streams"


def by_sid(result: Synthesized) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in result.statements() if "Sid" in s}


def function_env(result: Synthesized) -> dict[str, Any]:
    variables: dict[str, Any] = result.only("AWS::Lambda::Function")["Environment"]["Variables"]
    return variables


def schema_file(name: str) -> Any:
    return json.loads((DEFAULT_SCHEMAS_DIR / name).read_text())


# A variant of the typed example: existing bucket, no KMS key for the secret, two Glue registries (one in another
# region), a json-only catalog topic set, hourly pattern with a date segment.
VARIANT: dict[str, Any] = with_changes(
    example("typed"),
    {
        "bucket": {"existingBucketName": "corp-kafka-archive"},
        "archive.registryAuthSecretKmsKeyArn": None,
        "archive.timePattern": "dt=%Y-%m-%d/hour=%H",
        "archive.valueFormats.payments": {
            "format": "avro-glue",
            "registryArn": OTHER_REGISTRY,
            "readerSchema": "payments.avsc",
        },
        "archive.valueFormats.audit": {
            "format": "avro-confluent",
            "registryUrl": "http://registry.internal:8081",
            "readerSchema": "orders.avsc",
        },
    },
)


@pytest.fixture(scope="module")
def variant(synth: Synth) -> Synthesized:
    return synth(VARIANT)


# ------------------------------------------------------------------------------------------------ environment


def test_value_formats_round_trip_through_the_function_environment(typed: Synthesized) -> None:
    env = function_env(typed)
    assert env[ENV_NAMES["value_formats"]] == canonical_value_formats(example("typed")["archive"]["valueFormats"])
    assert ENV_NAMES["value_schemas_dir"] not in env, "the function's default: value_schemas/ in its own asset"
    # What the Lambda will read at cold start (bucket and queue are deploy-time references in the template).
    deployed = {k: v for k, v in env.items() if isinstance(v, str)}
    deployed |= {"ARCHIVE_BUCKET": "corp-archive", "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q"}
    settings = Settings.from_env(deployed)
    assert settings.typed_topics == typed.config.archive.typed_topics()
    assert sorted(settings.typed_topics) == ["clicks", "orders", "payments"], "raw 'audit' is not typed"
    clicks = settings.typed_topics["clicks"]
    assert (clicks.format, clicks.registry_arn, clicks.reader_schema) == (
        "avro-glue",
        REGISTRY,
        schema_file("clicks.avsc"),
    )
    assert settings.typed_topics["payments"].registry_auth_secret_arn == SECRET


def test_the_typed_example_ships_its_schemas_in_the_asset(typed: Synthesized) -> None:
    for name in ("orders.avsc", "payments.avsc", "clicks.avsc"):
        assert (typed.stack.archiver.asset_dir / "value_schemas" / name).is_file(), name


def test_a_config_without_value_formats_changes_nothing(msk: Synthesized) -> None:
    assert ENV_NAMES["value_formats"] not in function_env(msk)
    assert not {SID_SECRETS, SID_SECRETS_KEY, SID_GLUE} & set(by_sid(msk))
    assert not msk.statements_for("glue:GetSchemaVersion")
    assert not msk.resources("AWS::Glue::Database")
    assert not msk.resources("AWS::Glue::Table")
    assert msk.stack.catalog is None


# ------------------------------------------------------------------------------------------------ IAM


def test_registry_secret_and_its_key_are_scoped(typed: Synthesized) -> None:
    statements = by_sid(typed)
    assert statements[SID_SECRETS]["Action"] == "secretsmanager:GetSecretValue"
    assert statements[SID_SECRETS]["Resource"] == SECRET
    decrypt = statements[SID_SECRETS_KEY]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", KEY)
    assert decrypt["Condition"] == {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}
    assert typed.statements_for("secretsmanager:GetSecretValue") == [statements[SID_SECRETS]], "no other reads"


def test_glue_schema_versions_only_of_the_configured_registry(typed: Synthesized) -> None:
    glue = by_sid(typed)[SID_GLUE]
    assert glue["Action"] == "glue:GetSchemaVersion"
    assert glue["Resource"] == [REGISTRY, "arn:aws:glue:eu-west-1:123456789012:schema/streams/*"]
    actions = {a for s in typed.statements() for a in as_list(s["Action"])}
    assert {a for a in actions if a.startswith("glue:")} == {"glue:GetSchemaVersion"}, "the catalog needs no grant"
    acknowledged = {rule: reason for path, rule, reason in acknowledgments(typed) if path.endswith("/Archiver/Role")}
    rule = "AwsSolutions-IAM5[Resource::arn:aws:glue:eu-west-1:123456789012:schema/streams/*]"
    assert rule in acknowledged
    assert "schema version id" in acknowledged[rule]


def test_each_registry_in_its_own_region_and_no_key_without_config(variant: Synthesized) -> None:
    statements = by_sid(variant)
    assert statements[SID_GLUE]["Resource"] == [
        REGISTRY,
        "arn:aws:glue:eu-west-1:123456789012:schema/streams/*",
        OTHER_REGISTRY,
        "arn:aws:glue:us-east-1:123456789012:schema/us-streams/*",
    ]
    assert SID_SECRETS not in statements, "no avro-confluent topic with a secret left"
    assert SID_SECRETS_KEY not in statements


# ------------------------------------------------------------------------------------------------ catalog


def test_catalog_has_a_table_per_typed_topic_over_the_created_bucket(typed: Synthesized) -> None:
    (database,) = typed.resources("AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == "kafka_archive"
    found = tables(typed.template)
    assert sorted(found) == ["audit", "clicks", "orders", "payments"], "every topic has a table"
    bucket_id = next(iter(typed.resources("AWS::S3::Bucket")))
    for topic, schema in (("orders", "orders.avsc"), ("payments", "payments.avsc"), ("clicks", "clicks.avsc")):
        table = found[topic]
        assert table["StorageDescriptor"]["Location"] == {
            "Fn::Join": ["", ["s3://", {"Ref": bucket_id}, f"/typed/{topic}/"]]
        }
        literal = json.loads(table["Parameters"]["avro.schema.literal"])
        assert literal == typed_archive_schema(schema_file(schema)), "what the function writes with"
        assert table["Parameters"]["has_encrypted_data"] is False, "SSE objects: no CSE-KMS flag for Athena"
        assert [c["Name"] for c in table["PartitionKeys"]] == ["year", "month", "day", "hour"]


def test_catalog_over_an_existing_bucket_follows_the_time_pattern(variant: Synthesized) -> None:
    assert not variant.resources("AWS::S3::Bucket")
    found = tables(variant.template)
    assert sorted(found) == ["audit", "clicks", "orders", "payments"]
    clicks = found["clicks"]
    assert clicks["StorageDescriptor"]["Location"] == "s3://corp-kafka-archive/typed/clicks/"
    assert (
        clicks["Parameters"]["storage.location.template"]
        == "s3://corp-kafka-archive/typed/clicks/dt=${dt}/hour=${hour}"
    )
    assert [c["Name"] for c in clicks["PartitionKeys"]] == ["dt", "hour"]


def test_no_catalog_without_the_catalog_section(synth: Synth) -> None:
    result = synth(with_changes(example("typed"), {"catalog": None}))
    assert not result.resources("AWS::Glue::Database")
    assert ENV_NAMES["value_formats"] in function_env(result)
    assert by_sid(result)[SID_GLUE]


def test_table_names_are_lower_case_a_z_0_9_and_underscores() -> None:
    expected = {"orders": "orders", "Orders.EU-1": "orders_eu_1", "a_b": "a_b", "x.y-z": "x_y_z"}
    assert {topic: table_name_for(topic) for topic in expected} == expected


# ------------------------------------------------------------------------------------------------ bad configs


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        (
            {"archive.valueFormats.clicks.readerSchema": None},
            ("archive.valueFormats.clicks.readerSchema", "is required with catalog", "'avro-glue'"),
        ),
        (
            {"archive.valueFormats.payments.readerSchema": None},
            ("archive.valueFormats.payments.readerSchema", "is required with catalog", "'avro-confluent'"),
        ),
        (
            {"archive.valueFormats.orders.format": "protobuf"},
            ("archive.valueFormats", "['orders']", "raw, json, avro-confluent, avro-glue", "'protobuf'"),
        ),
        (
            {"archive.valueFormats.orders.schema": "missing.avsc"},
            ("archive.valueFormats", "['orders']", "'missing.avsc' is not a readable file"),
        ),
        (
            {"archive.valueFormats.clicks.registryArn": "arn:aws:glue:eu-west-1:123456789012:schema/x"},
            ("archive.valueFormats", "['clicks']", "Glue registry ARN"),
        ),
        (
            {"archive.valueFormats.orders.registryUrl": "https://r.example.com"},
            ("archive.valueFormats", "'registryUrl' is not a setting of format 'json'", "valid: format, schema"),
        ),
        ({"archive.valueFormats": ["orders"]}, ("archive.valueFormats", "must be an object of topic -> format")),
        (
            {"archive.valueFormats.sales": {"format": "json", "schema": "orders.avsc"}},
            ("archive.valueFormats.sales", "is not one of eventSource.topics", "orders, payments, clicks, audit"),
        ),
        (
            {"archive.valueFormats.payments.registryAuthSecretArn": None},
            ("archive.registryAuthSecretKmsKeyArn", "only applies when a topic", "registryAuthSecretArn"),
        ),
        ({"archive.registryAuthSecretKmsKeyArn": "key-1"}, ("archive.registryAuthSecretKmsKeyArn", "KMS key ARN")),
        (
            {"archive.valueFormats.payments.registryAuthSecretArn": SECRET.replace("eu-west-1", "us-east-1")},
            ("archive.valueFormats.payments.registryAuthSecretArn", "is in us-east-1 but region is eu-west-1"),
        ),
        (
            {
                "archive.partitioner": "segments",
                "archive.timePattern": None,
                "archive.partitionSegments": [
                    {"kind": "field", "field": "a", "name": "Country"},
                    {"kind": "field", "field": "b", "name": "country"},
                ],
            },
            ("archive.partitionSegments", "share the Glue partition column 'country'"),
        ),
        ({"catalog.databaseName": "Kafka-Archive"}, ("catalog.databaseName", "a-z 0-9 _")),
        ({"catalog": {}}, ("catalog.databaseName", "is required")),
        ({"catalog.tableName": "x"}, ("catalog.tableName", "not a known field", "databaseName")),
        (
            {
                "eventSource.topics": ["orders", "Orders"],
                "archive.valueFormats": {
                    "orders": {"format": "json", "schema": "orders.avsc"},
                    "Orders": {"format": "json", "schema": "orders.avsc"},
                },
            },
            ("catalog", "'Orders' and 'orders' would both be table 'orders'"),
        ),
    ],
)
def test_bad_typed_config_names_field_and_fix(changes: dict[str, Any], fragments: tuple[str, ...]) -> None:
    assert_problem(problems_of(with_changes(example("typed"), changes)), *fragments)


def test_every_typed_problem_is_reported_at_once() -> None:
    data = with_changes(
        example("typed"),
        {
            "archive.partitioner": "default",
            "archive.valueFormats.clicks.readerSchema": None,
            "archive.valueFormats.orders.format": "xml",
            "catalog.databaseName": "bad name",
        },
    )
    problems = problems_of(data)
    assert_problem(problems, "archive.valueFormats", "['orders']", "format must be one of")
    assert_problem(problems, "catalog.databaseName", "Glue database name")
    # Settings rejected the archive section, so the cross-section checks wait for a valid one; the rest is listed.
    data = with_changes(
        example("typed"),
        {
            "archive.partitioner": "default",
            "archive.valueFormats.clicks.readerSchema": None,
            "catalog.databaseName": "bad name",
        },
    )
    problems = problems_of(data)
    assert len(problems) == 2, problems  # the catalog follows any layout (the default partitioner's too)
    assert_problem(problems, "archive.valueFormats.clicks.readerSchema", "required with catalog")
    assert_problem(problems, "catalog.databaseName", "Glue database name")


def test_value_formats_must_fit_the_lambda_environment() -> None:
    topics = [f"topic-{n:03d}" for n in range(60)]
    formats = {t: {"format": "json", "schema": "orders.avsc"} for t in topics}
    assert len(canonical_value_formats(formats)) > MAX_VALUE_FORMATS_BYTES
    data = with_changes(
        example("typed"), {"eventSource.topics": topics, "archive.valueFormats": formats, "catalog": None}
    )
    data["archive"].pop("registryAuthSecretKmsKeyArn")
    assert_problem(problems_of(data), "archive.valueFormats", "Lambda allows 4 KB")
