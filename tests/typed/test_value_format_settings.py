"""``VALUE_FORMATS`` / ``VALUE_SCHEMAS_DIR`` in ``Settings``: every problem named at once, the env round trip, and a
cold start of the real handler with a typed topic."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from archiver.errors import SettingsError
from archiver.settings import Settings
from archiver.values.config import DEFAULT_SCHEMAS_DIR, canonical_value_formats
from tests.conftest import FakeLambdaContext
from tests.kafka_events import kafka_event, kafka_record
from tests.typed.conftest import TypedAws, write_schema
from tests.typed.schemas import ORDER_V1, order
from tests.unit.aws_fakes import BUCKET

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/archiver-dlq"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-auth-AbCdEf"
GLUE = "arn:aws:glue:eu-west-1:123456789012:registry/streams"


def settings(formats: object, schemas_dir: Path | None = None) -> Settings:
    return Settings(
        archive_bucket="my-archive",
        dead_letter_queue_url=QUEUE,
        value_formats=formats if isinstance(formats, str) else json.dumps(formats),
        value_schemas_dir=None if schemas_dir is None else str(schemas_dir),
    )


def test_every_value_format_problem_is_named_in_one_error(schemas_dir: Path) -> None:
    (schemas_dir / "broken.avsc").write_text('{"type": "record", "name": "X", "fields": [{"name": "a"}]}')
    (schemas_dir / "notjson.avsc").write_text("{")
    formats = {
        "bad topic!": {"format": "raw"},
        "a": {"format": "protobuf"},
        "b": {"format": "json"},
        "c": {"format": "json", "schema": "missing.avsc"},
        "d": {"format": "json", "schema": "../etc/passwd.avsc"},
        "e": {"format": "json", "schema": "broken.avsc"},
        "f": {"format": "json", "schema": "notjson.avsc"},
        "g": {"format": "avro-confluent", "registryUrl": "ftp://registry", "registryAuthSecretArn": "secret"},
        "h": {"format": "avro-glue", "registryArn": "streams", "esmRecordFormat": "XML", "colour": "blue"},
        "i": "json",
    }

    with pytest.raises(SettingsError) as caught:
        settings(formats, schemas_dir)

    problems = caught.value.problems
    assert all(problem.startswith("VALUE_FORMATS (value_formats) [") for problem in problems)
    message = str(caught.value)
    for expected in (
        "['bad topic!'] is not a Kafka topic name",
        "['a'] format must be one of raw, json, avro-confluent, avro-glue; got 'protobuf'",
        "['b'] 'schema' is required for format 'json'",
        "['c'] schema 'missing.avsc' is not a readable file in VALUE_SCHEMAS_DIR",
        "['d'] schema must be a file name ending in .avsc",
        "['e'] schema 'broken.avsc' is not a valid Avro schema",
        "['f'] schema 'notjson.avsc' is not JSON",
        "['g'] registryUrl must be an http(s) URL",
        "['g'] registryAuthSecretArn must be a Secrets Manager secret ARN",
        "['h'] 'colour' is not a setting of format 'avro-glue' "
        "(valid: esmRecordFormat, format, readerSchema, registryArn)",
        "['h'] registryArn must be a Glue registry ARN",
        "['h'] esmRecordFormat must be one of SOURCE, JSON; got 'XML'",
        "['i'] must be an object",
    ):
        assert expected in message
    assert len(problems) == 13


@pytest.mark.parametrize("text", ["[]", "{not json", '"orders"'])
def test_value_formats_must_be_a_json_object(text: str) -> None:
    with pytest.raises(SettingsError, match=r"VALUE_FORMATS \(value_formats\) must be a JSON object"):
        settings(text)


def test_value_formats_round_trip_through_the_environment(schemas_dir: Path) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    original = settings(
        canonical_value_formats(
            {
                "orders": {"format": "json", "schema": "orders.avsc"},
                "payments": {
                    "format": "avro-confluent",
                    "registryUrl": "https://registry.example.com/",
                    "registryAuthSecretArn": SECRET,
                    "readerSchema": "orders.avsc",
                    "esmRecordFormat": "JSON",
                },
                "clicks": {"format": "avro-glue", "registryArn": GLUE},
                "audit": {"format": "raw"},
            }
        ),
        schemas_dir,
    )

    env = original.to_env()
    again = Settings.from_env(env)

    assert again == original
    assert env["VALUE_SCHEMAS_DIR"] == str(schemas_dir)
    assert sorted(again.typed_topics) == ["clicks", "orders", "payments"]  # raw topics are not typed
    payments = again.typed_topics["payments"]
    assert payments.registry_url == "https://registry.example.com"
    assert payments.reader_schema == ORDER_V1
    assert payments.esm_record_format == "JSON"
    assert again.typed_topics["clicks"].registry_region == "eu-west-1"
    assert again.typed_topics["orders"].schema == ORDER_V1


def test_no_value_formats_means_every_topic_is_raw() -> None:
    plain = Settings(archive_bucket="my-archive", dead_letter_queue_url=QUEUE)
    assert plain.typed_topics == {}
    assert "VALUE_FORMATS" not in plain.to_env()


def test_the_default_schemas_dir_is_the_folder_shipped_in_the_asset() -> None:
    assert Path(__file__).resolve().parents[2] / "functions" / "archiver" / "value_schemas" == DEFAULT_SCHEMAS_DIR
    assert DEFAULT_SCHEMAS_DIR.is_dir()


def test_the_handler_cold_starts_with_a_typed_topic(
    aws: TypedAws, schemas_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_schema(schemas_dir, "orders.avsc", ORDER_V1)
    env = {
        "ARCHIVE_BUCKET": BUCKET,
        "DEAD_LETTER_QUEUE_URL": aws.queue_url,
        "VALUE_FORMATS": json.dumps({"orders": {"format": "json", "schema": "orders.avsc"}}),
        "VALUE_SCHEMAS_DIR": str(schemas_dir),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("handler", None)
    try:
        handler = importlib.import_module("handler")
        event = kafka_event([kafka_record("orders", 0, 0, value=json.dumps(order(0)).encode())])
        result = handler.lambda_handler(event, FakeLambdaContext())
    finally:
        sys.modules.pop("handler", None)

    (key,) = result["keysWritten"]
    assert aws.read(key)[1][0]["value"] == order(0)
