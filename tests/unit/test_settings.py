"""Settings: defaults, every bad value named at once, and the env round trip infra relies on."""

from __future__ import annotations

import pytest

from archiver.errors import SettingsError
from archiver.settings import DEFAULT_CODEC, Settings

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/archiver-dlq"
REQUIRED = {"ARCHIVE_BUCKET": "my-archive", "DEAD_LETTER_QUEUE_URL": QUEUE}


def test_defaults_need_only_bucket_and_queue() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.archive_prefix == "topics/"
    assert settings.partitioner == "default"
    assert settings.codec == DEFAULT_CODEC == "zstandard"
    assert settings.time_pattern == "year=%Y/month=%m/day=%d/hour=%H"
    assert settings.timezone == "UTC"


def test_missing_required_variables_are_all_named() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({})
    assert caught.value.problems == ["ARCHIVE_BUCKET is required", "DEAD_LETTER_QUEUE_URL is required"]


def test_every_bad_value_is_named_in_one_error() -> None:
    env = {
        "ARCHIVE_BUCKET": "Not_A_Bucket",
        "DEAD_LETTER_QUEUE_URL": "queue",
        "ARCHIVE_PREFIX": "../escape/",
        "PARTITIONER": "hash",
        "AVRO_CODEC": "lz4",
        "TIME_PARTITION_PATTERN": "%Y/%b",
        "TIME_PARTITION_TIMEZONE": "Mars/Olympus",
        "PARTITION_FIELD": "a/b",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    for name in env:
        assert name in message
    assert "default, time, field" in message
    assert "null, deflate, snappy, zstandard" in message
    assert len(caught.value.problems) == len(env)


def test_field_partitioner_requires_a_field() -> None:
    with pytest.raises(SettingsError, match=r"PARTITION_FIELD .* is required when PARTITIONER is 'field'"):
        Settings.from_env(REQUIRED | {"PARTITIONER": "field"})


@pytest.mark.parametrize(
    "prefix", ["/abs/", "a//b/", "no-slash", "./x/", "a/../b/", "dead-letter/", "dead-letter/x/", "sp ace/", "x" * 300]
)
def test_unsafe_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(SettingsError, match="ARCHIVE_PREFIX"):
        Settings.from_env(REQUIRED | {"ARCHIVE_PREFIX": prefix})


def test_an_explicitly_empty_prefix_means_the_bucket_root() -> None:
    assert Settings.from_env(REQUIRED | {"ARCHIVE_PREFIX": ""}).archive_prefix == ""


@pytest.mark.parametrize(
    "pattern", ["", "year=YYYY", "%Y/%j", "/%Y", "%Y/", "%Y//%m", "%Y/../%m", "%Y %m", "%Y/%%", "d=%Y" * 20]
)
def test_unsafe_time_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(SettingsError, match="TIME_PARTITION_PATTERN"):
        Settings(archive_bucket="my-archive", dead_letter_queue_url=QUEUE, time_pattern=pattern)


def test_to_env_round_trips_through_from_env() -> None:
    settings = Settings(
        archive_bucket="my-archive",
        dead_letter_queue_url=QUEUE,
        archive_prefix="raw/kafka/",
        partitioner="field",
        partition_field="country",
        time_pattern="dt=%Y-%m-%d",
        timezone="Europe/Berlin",
        codec="snappy",
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_cdk_tokens_are_left_for_deploy_time() -> None:
    settings = Settings(archive_bucket="${Token[TOKEN.123]}", dead_letter_queue_url="${Token[TOKEN.456]}")
    assert settings.to_env()["ARCHIVE_BUCKET"] == "${Token[TOKEN.123]}"
