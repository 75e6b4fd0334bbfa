"""The deployment config: examples load, and bad configs fail once, naming every bad field and its valid values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.app import context_flag, stack_env
from infra.config import ConfigError, load_config, parse_config
from tests.infra.conftest import EXAMPLES, assert_problem, example, problems_of, with_changes

KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SCRAM_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_archiver-AbCdEf"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_config_loads(name: str) -> None:
    config = load_config(EXAMPLES[name])
    assert config.event_source.topics


def test_msk_example_defaults_to_iam_auth_and_arm64() -> None:
    config = load_config(EXAMPLES["msk"])
    assert config.source_kind == "msk"
    assert config.msk is not None
    assert config.msk.auth == "iam"
    assert config.msk.cluster_parts[3:] == ("orders-cluster", "7d7131e1-25c5-4e9a-9a3b-1c8c6f8d9a01-2")
    assert config.function.architecture == "arm64"
    assert config.bucket.encryption == "kms"
    assert config.event_source.on_failure == "queue"


def test_local_config_is_x86_64_sse_s3_and_public_without_auth() -> None:
    config = load_config(EXAMPLES["local"])
    assert config.self_managed is not None
    assert config.self_managed.auth == "none"
    assert config.self_managed.vpc is None
    assert config.function.architecture == "x86_64"
    assert config.bucket.encryption == "s3"


def test_minimal_config_gets_documented_defaults() -> None:
    config = parse_config(
        {
            "source": "msk",
            "msk": {"clusterArn": example("msk")["msk"]["clusterArn"]},
            "eventSource": {"topics": ["orders"], "consumerGroupId": "g"},
        }
    )
    assert config.stack_name == "KafkaS3Archiver"
    assert config.event_source.batch_size == 100
    assert config.event_source.starting_position == "TRIM_HORIZON"
    assert config.event_source.batching_window_seconds is None
    assert config.archive.prefix == "topics/"
    assert config.archive.codec == "zstandard"
    assert config.function.memory_mib == 1024
    assert config.function.log_retention_days == 30
    assert config.bucket.removal_policy == "retain"
    assert config.event_source.on_failure == "queue"
    # On-demand mode: AWS offers the mapping's own metrics and logs only in provisioned mode.
    assert (config.event_source.metrics, config.event_source.system_log_level) == ((), "off")
    monitoring = config.monitoring
    assert (monitoring.offset_lag_evaluation_minutes, monitoring.offset_lag_datapoints) == (15, 10)
    assert (monitoring.heartbeat_minutes, monitoring.dead_letter_age_alarm_days) == (60, 4)
    assert monitoring.on_failure_age_alarm_hours == 24


def test_provisioned_mode_turns_the_mapping_metrics_and_logs_on() -> None:
    config = parse_config(with_changes(example("msk"), {"eventSource.provisionedPollers": {"minimum": 1}}))
    assert config.event_source.metrics == ("EventCount", "ErrorCount", "KafkaMetrics")
    assert config.event_source.system_log_level == "WARN"
    chosen = parse_config(
        with_changes(
            example("msk"),
            {"eventSource.provisionedPollers": {"minimum": 1}, "eventSource.metrics": ["KafkaMetrics", "EventCount"]},
        )
    )
    assert chosen.event_source.metrics == ("EventCount", "KafkaMetrics")


def test_all_problems_are_reported_at_once() -> None:
    data = with_changes(
        example("msk"),
        {
            "msk.clusterArn": "arn:aws:kafka:eu-west-1:123:cluster/x",
            "eventSource.batchSize": 20000,
            "eventSource.startingPosition": "EARLIEST",
            "function.architecture": "sparc",
            "archive.codec": "lz4",
        },
    )
    problems = problems_of(data)
    assert len(problems) == 5, problems
    assert_problem(problems, "msk.clusterArn", "MSK cluster ARN")
    assert_problem(problems, "eventSource.batchSize", "from 1 to 10000", "20000")
    assert_problem(problems, "eventSource.startingPosition", "TRIM_HORIZON, LATEST, AT_TIMESTAMP", "EARLIEST")
    assert_problem(problems, "function.architecture", "arm64, x86_64", "sparc")
    assert_problem(problems, "archive.codec", "null, deflate, snappy, zstandard", "lz4")


def test_error_message_lists_every_problem() -> None:
    data = with_changes(example("msk"), {"eventSource.batchSize": 0, "function.memoryMiB": 64})
    with pytest.raises(ConfigError) as error:
        parse_config(data, source="config x.json")
    message = str(error.value)
    assert message.startswith("invalid config x.json:")
    assert "eventSource.batchSize" in message
    assert "function.memoryMiB" in message


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"source": "kafka"}, ("source", "msk, self-managed")),
        ({"source": None}, ("source", "is required")),
        ({"msk": None}, ("msk", "is required")),
        (
            {"selfManaged": {"bootstrapServers": ["b:9092"]}},
            ("selfManaged", "only applies when source is 'self-managed'"),
        ),
        ({"msk.auth": "tls"}, ("msk.auth", "iam, sasl-scram-512")),
        ({"msk.auth": "sasl-scram-512"}, ("msk.secretArn", "required when auth is 'sasl-scram-512'")),
        (
            {"msk.secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_x-AbCdEf"},
            ("msk.secretArn", "only applies to auth 'sasl-scram-512'"),
        ),
        ({"msk.clusterSecurityGroupId": "group-1"}, ("msk.clusterSecurityGroupId", "sg-")),
        ({"eventSource.topics": []}, ("eventSource.topics", "non-empty list")),
        ({"eventSource.topics": ["ok", "bad topic"]}, ("eventSource.topics[1]", "Kafka topic names")),
        ({"eventSource.topics": ["a", "a"]}, ("eventSource.topics", "must not repeat")),
        ({"eventSource.consumerGroupId": None}, ("eventSource.consumerGroupId", "is required")),
        ({"eventSource.consumerGroupId": "has space"}, ("eventSource.consumerGroupId", "consumer group id")),
        ({"eventSource.consumerGroupId": "g" * 199}, ("eventSource.consumerGroupId", "AWS allows 200")),
        ({"eventSource.batchingWindowSeconds": 301}, ("eventSource.batchingWindowSeconds", "from 0 to 300")),
        (
            {"eventSource.startingPosition": "AT_TIMESTAMP"},
            ("eventSource.startingPositionTimestamp", "required when startingPosition is 'AT_TIMESTAMP'"),
        ),
        (
            {"eventSource.startingPositionTimestamp": 1700000000},
            ("eventSource.startingPositionTimestamp", "only applies when startingPosition is 'AT_TIMESTAMP'"),
        ),
        ({"eventSource.retryAttempts": 3}, ("eventSource.retryAttempts", "needs provisioned mode")),
        ({"eventSource.bisectBatchOnError": True}, ("eventSource.bisectBatchOnError", "needs provisioned mode")),
        ({"eventSource.maxRecordAgeSeconds": 3600}, ("eventSource.maxRecordAgeSeconds", "needs provisioned mode")),
        (
            {"eventSource.provisionedPollers": {"minimum": 5, "maximum": 2}},
            ("eventSource.provisionedPollers.minimum", "must not exceed maximum"),
        ),
        (
            {"eventSource.provisionedPollers": {"minimum": 0}},
            ("eventSource.provisionedPollers.minimum", "from 1 to 200"),
        ),
        (
            {"eventSource.provisionedPollers": {"maximum": 2001}},
            ("eventSource.provisionedPollers.maximum", "from 1 to 2000"),
        ),
        ({"eventSource.onFailure": "sns"}, ("eventSource.onFailure", "queue, bucket, none")),
        (
            {"eventSource.onFailure": "dead-letter-queue"},
            ("eventSource.onFailure", "'dead-letter-queue' is now 'queue'", "own on-failure queue"),
        ),
        ({"eventSource.topics": ["x"]}, ("eventSource.topics[0]", "at least 2 characters", "'x'")),
        ({"eventSource.topics": ["ok", ".hidden"]}, ("eventSource.topics[1]", "not start with '.'", "'.hidden'")),
        ({"eventSource.metrics": ["EventCount"]}, ("eventSource.metrics", "needs provisioned mode")),
        ({"eventSource.systemLogLevel": "INFO"}, ("eventSource.systemLogLevel", "needs provisioned mode")),
        (
            {"eventSource.provisionedPollers": {"minimum": 1}, "eventSource.metrics": ["Lag"]},
            ("eventSource.metrics[0]", "EventCount, ErrorCount, KafkaMetrics", "Lag"),
        ),
        (
            {"eventSource.provisionedPollers": {"minimum": 1}, "eventSource.systemLogLevel": "ERROR"},
            ("eventSource.systemLogLevel", "WARN, INFO, DEBUG, off", "ERROR"),
        ),
        ({"monitoring.offsetLagDatapoints": 20}, ("monitoring.offsetLagDatapoints", "must not exceed", "(15)")),
        ({"monitoring.heartbeatMinutes": 1441}, ("monitoring.heartbeatMinutes", "from 0 to 1440")),
        ({"monitoring.deadLetterAgeAlarmDays": 14}, ("monitoring.deadLetterAgeAlarmDays", "from 1 to 13")),
        ({"monitoring.onFailureAgeAlarmHours": 336}, ("monitoring.onFailureAgeAlarmHours", "from 1 to 335")),
        (
            {
                "msk.auth": "sasl-scram-512",
                "msk.secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/archiver-AbCdEf",
                "msk.secretKmsKeyArn": KMS_KEY,
            },
            ("msk.secretArn", "starts with 'AmazonMSK_'", "kafka/archiver-AbCdEf"),
        ),
        (
            {"msk.auth": "sasl-scram-512", "msk.secretArn": SCRAM_SECRET},
            ("msk.secretKmsKeyArn", "required when auth is 'sasl-scram-512'", "customer managed KMS key"),
        ),
        (
            {
                "msk.auth": "sasl-scram-512",
                "msk.secretArn": SCRAM_SECRET[:-6] + "x" * 200,
                "msk.secretKmsKeyArn": KMS_KEY,
            },
            ("msk.secretArn", "characters", "at most 200"),
        ),
        ({"eventSource.batchSize": "100"}, ("eventSource.batchSize", "whole number")),
        ({"eventSource.enabled": "yes"}, ("eventSource.enabled", "true or false")),
        ({"eventSource.bachSize": 5}, ("eventSource.bachSize", "not a known field", "batchSize")),
        ({"archive.prefix": "no-slash"}, ("archive.prefix", "'/'-terminated", "'no-slash'")),
        ({"archive.prefix": "dead-letter/x/"}, ("archive.prefix", "reserved 'dead-letter/'")),
        ({"archive.prefix": "aws/lambda/x/"}, ("archive.prefix", "must not start with 'aws/lambda/'")),
        ({"archive.partitioner": "hash"}, ("archive.partitioner", "default, time, field")),
        ({"archive.partitioner": "field"}, ("archive.partitionField", "required when partitioner is 'field'")),
        ({"archive.timePattern": "%Y/%B"}, ("archive.timePattern", "%Y, %m, %d, %H, %M")),
        ({"archive.timezone": "Mars/Olympus"}, ("archive.timezone", "IANA time zone")),
        ({"archive.prefix": 7}, ("archive.prefix", "must be a string")),
        ({"bucket.encryption": "aes"}, ("bucket.encryption", "kms, s3")),
        ({"bucket.existingBucketName": "Bad_Name"}, ("bucket.existingBucketName", "S3 bucket name")),
        (
            {"bucket.existingBucketName": "my-archive"},
            ("bucket.encryption", "only applies to a bucket the stack creates"),
        ),
        (
            {"bucket.existingBucketKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/abc"},
            ("bucket.existingBucketKmsKeyArn", "only applies with existingBucketName"),
        ),
        (
            {"bucket.lifecycle.transitions": [{"storageClass": "STANDARD_IA", "afterDays": 7}]},
            ("bucket.lifecycle.transitions[0].afterDays", "at least 30"),
        ),
        (
            {"bucket.lifecycle.transitions": [{"storageClass": "TAPE", "afterDays": 7}]},
            ("bucket.lifecycle.transitions[0].storageClass", "INTELLIGENT_TIERING"),
        ),
        ({"bucket.lifecycle.expirationDays": 60}, ("bucket.lifecycle.expirationDays", "later than every transition")),
        ({"function.memoryMiB": 64}, ("function.memoryMiB", "from 128 to 10240")),
        ({"function.timeoutSeconds": 841}, ("function.timeoutSeconds", "from 1 to 840")),
        ({"function.logRetentionDays": 10}, ("function.logRetentionDays", "must be one of 1, 3, 5, 7, 14")),
        ({"monitoring.alarmEmails": ["not-an-email"]}, ("monitoring.alarmEmails[0]", "email addresses")),
        (
            {"monitoring.alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:alarms"},
            ("monitoring.alarmTopicArn", "not both"),
        ),
        ({"monitoring.offsetLagThreshold": 0}, ("monitoring.offsetLagThreshold", "at least 1")),
        ({"stackName": "1bad"}, ("stackName", "CloudFormation stack name")),
        ({"region": "us-east-1"}, ("msk.clusterArn", "is in eu-west-1 but region is us-east-1")),
        ({"region": "moon-1"}, ("region", "AWS region")),
        ({"tags": {"a": 1}}, ("tags", "string values")),
    ],
)
def test_bad_msk_config_names_field_and_valid_values(changes: dict[str, Any], fragments: tuple[str, ...]) -> None:
    assert_problem(problems_of(with_changes(example("msk"), changes)), *fragments)


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"selfManaged.bootstrapServers": []}, ("selfManaged.bootstrapServers", "non-empty list of host:port")),
        ({"selfManaged.bootstrapServers": ["no-port"]}, ("selfManaged.bootstrapServers[0]", "host:port")),
        (
            {"selfManaged.bootstrapServers": ["-broker-.example.com:9092"]},
            ("selfManaged.bootstrapServers[0]", "RFC 1123", "not starting or ending with '-'", "-broker-"),
        ),
        (
            {"selfManaged.bootstrapServers": ["broker.example.com:70000"]},
            ("selfManaged.bootstrapServers[0]", "port from 1 to 65535", "70000"),
        ),
        (
            {"selfManaged.bootstrapServers": [f"b-{i}.kafka.example.com:9096" for i in range(11)]},
            ("selfManaged.bootstrapServers", "has 11 servers", "at most 10"),
        ),
        (
            {
                "selfManaged.vpc": {
                    "subnetIds": [f"subnet-{i:017x}" for i in range(16)],
                    "securityGroupIds": [f"sg-{i:017x}" for i in range(16)],
                }
            },
            ("selfManaged.vpc", "makes 34 source-access entries", "16 subnets, 16 security groups", "at most 29"),
        ),
        (
            {"selfManaged.secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + "s" * 150},
            ("selfManaged.secretArn", "is 203 characters", "at most 200"),
        ),
        ({"selfManaged.auth": "kerberos"}, ("selfManaged.auth", "sasl-scram-256, sasl-scram-512, plain, mtls, none")),
        ({"selfManaged.secretArn": None}, ("selfManaged.secretArn", "required when auth is 'sasl-scram-512'")),
        (
            {"selfManaged.auth": "mtls", "selfManaged.secretArn": None},
            ("selfManaged.secretArn", "client certificate and key"),
        ),
        ({"selfManaged.auth": "none"}, ("selfManaged.secretArn", "must not be set when auth is 'none'")),
        ({"selfManaged.secretArn": "arn:aws:s3:::bucket"}, ("selfManaged.secretArn", "Secrets Manager secret ARN")),
        ({"selfManaged.vpc.subnetIds": []}, ("selfManaged.vpc.subnetIds", "is required with vpc")),
        ({"selfManaged.vpc.securityGroupIds": ["sg-zz"]}, ("selfManaged.vpc.securityGroupIds[0]", "sg-")),
        ({"msk": {"clusterArn": "x"}}, ("msk", "only applies when source is 'msk'")),
        ({"region": "us-east-1"}, ("selfManaged.secretArn", "is in eu-west-1 but region is us-east-1")),
        ({"region": "us-east-1"}, ("selfManaged.rootCaSecretArn", "the secret must be in the same region")),
    ],
)
def test_bad_self_managed_config(changes: dict[str, Any], fragments: tuple[str, ...]) -> None:
    assert_problem(problems_of(with_changes(example("self-managed"), changes)), *fragments)


@pytest.mark.parametrize(
    "server",
    ["broker.example.com:9092", "b-1.kafka.eu-west-1.amazonaws.com:9096", "10.0.0.7:9092", "localhost:9092", "a:1"],
)
def test_bootstrap_servers_aws_accepts(server: str) -> None:
    config = parse_config(with_changes(example("self-managed"), {"selfManaged.bootstrapServers": [server]}))
    assert config.self_managed is not None
    assert config.self_managed.bootstrap_servers == (server,)


def test_source_access_entries_up_to_the_limit_are_accepted() -> None:
    vpc = {
        "subnetIds": [f"subnet-{i:017x}" for i in range(14)],
        "securityGroupIds": [f"sg-{i:017x}" for i in range(13)],
    }
    config = parse_config(with_changes(example("self-managed"), {"selfManaged.vpc": vpc}))  # 27 + secret + root CA
    assert config.self_managed is not None


def test_on_failure_bucket_needs_the_stack_created_bucket() -> None:
    data = with_changes(
        example("local"), {"bucket": {"existingBucketName": "my-archive"}, "eventSource.onFailure": "bucket"}
    )
    assert_problem(problems_of(data), "eventSource.onFailure", "stack-created archive bucket")


def test_several_topics_get_one_consumer_group_each() -> None:
    config = parse_config(example("msk"))
    groups = [config.event_source.consumer_group_for(topic) for topic in config.event_source.topics]
    assert groups == ["kafka-s3-archiver-orders", "kafka-s3-archiver-payments"]
    single = parse_config(with_changes(example("msk"), {"eventSource.topics": ["orders"]}))
    assert single.event_source.consumer_group_for("orders") == "kafka-s3-archiver"


@pytest.mark.parametrize("data", [[], "text", None])
def test_non_object_config_is_rejected(data: Any) -> None:
    assert_problem(problems_of(data), "(top level)", "JSON object")


def test_load_config_reports_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


FULL_MSK: dict[str, Any] = {
    "stackName": "Full",
    "account": "123456789012",
    "region": "eu-west-1",
    "source": "msk",
    "msk": {
        "clusterArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/c/7d7131e1-25c5-4e9a-9a3b-1c8c6f8d9a01-2",
        "auth": "sasl-scram-512",
        "secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_a-AbCdEf",
        "secretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "clusterSecurityGroupId": "sg-0123456789abcdef0",
    },
    "eventSource": {
        "topics": ["ta", "tb"],
        "consumerGroupId": "g",
        "batchSize": 10,
        "batchingWindowSeconds": 1,
        "startingPosition": "AT_TIMESTAMP",
        "startingPositionTimestamp": 1764115200,
        "enabled": False,
        "provisionedPollers": {"minimum": 2, "maximum": 4},
        "retryAttempts": 3,
        "bisectBatchOnError": True,
        "maxRecordAgeSeconds": 3600,
        "onFailure": "bucket",
        "metrics": ["EventCount", "KafkaMetrics"],
        "systemLogLevel": "INFO",
    },
    "archive": {
        "prefix": "kafka/",
        "partitioner": "field",
        "timePattern": "%Y/%m",
        "timezone": "Europe/Berlin",
        "partitionField": "tenant",
        "codec": "deflate",
    },
    "bucket": {
        "encryption": "kms",
        "versioned": True,
        "removalPolicy": "destroy",
        "serverAccessLogsBucketName": "access-logs",
        "lifecycle": {
            "transitions": [{"storageClass": "GLACIER", "afterDays": 10}],
            "expirationDays": 100,
            "deadLetterExpirationDays": 7,
            "noncurrentVersionExpirationDays": 3,
        },
    },
    "function": {
        "architecture": "x86_64",
        "memoryMiB": 256,
        "timeoutSeconds": 30,
        "logRetentionDays": 7,
        "tracing": True,
        "reservedConcurrency": 5,
    },
    "monitoring": {
        "offsetLagThreshold": 5,
        "offsetLagEvaluationMinutes": 3,
        "offsetLagDatapoints": 2,
        "heartbeatMinutes": 10,
        "deadLetterAgeAlarmDays": 2,
        "onFailureAgeAlarmHours": 6,
        "errorsThreshold": 2,
        "throttlesThreshold": 3,
        "createAlarmTopic": True,
        "alarmEmails": ["a@example.com"],
    },
    "tags": {"team": "data"},
}
FULL_SELF_MANAGED: dict[str, Any] = {
    "source": "self-managed",
    "selfManaged": {
        "bootstrapServers": ["b:9096"],
        "auth": "mtls",
        "secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cert-AbCdEf",
        "rootCaSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ca-AbCdEf",
        "secretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "vpc": {"subnetIds": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]},
    },
    "eventSource": {"topics": ["ta"], "consumerGroupId": "g"},
    "bucket": {"existingBucketName": "corp-archive", "existingBucketKmsKeyArn": FULL_MSK["msk"]["secretKmsKeyArn"]},
    "monitoring": {"alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:alarms"},
}


def test_every_field_at_once_is_valid() -> None:
    config = parse_config(FULL_MSK)
    assert config.event_source.provisioned_pollers is not None
    assert config.event_source.provisioned_pollers.maximum == 4
    assert config.bucket.lifecycle.transitions[0].after_days == 10
    assert config.function.reserved_concurrency == 5
    assert config.monitoring.alarm_emails == ("a@example.com",)
    other = parse_config(FULL_SELF_MANAGED)
    assert other.self_managed is not None
    assert other.self_managed.vpc is not None
    assert other.bucket.existing_bucket_name == "corp-archive"


def test_every_config_field_is_documented(project_root: Path) -> None:
    """Every key of the examples and of the all-fields configs appears in docs/configuration.md."""
    docs = (project_root / "docs" / "configuration.md").read_text()

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return {k for k in node if not k.startswith("$")} | {k2 for v in node.values() for k2 in keys(v)}
        if isinstance(node, list):
            return {k for item in node for k in keys(item)}
        return set()

    documents = [json.loads(path.read_text()) for path in EXAMPLES.values()] + [FULL_MSK, FULL_SELF_MANAGED]
    used = set().union(*(keys(document) for document in documents)) - {"application", "team"}
    missing = sorted(key for key in used if not re.search(rf"`(?:[\w.\[\]]+\.)?{key}`", docs))
    assert not missing, f"undocumented config fields: {missing}"


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), (True, True), (False, False), ("false", False), ("TRUE", True), ("0", False)]
)
def test_context_flag(value: object, expected: bool) -> None:
    assert context_flag(value, default=True) is expected


def test_context_flag_rejects_other_values() -> None:
    with pytest.raises(ValueError, match="expected true or false"):
        context_flag("maybe", default=True)


def test_stack_env_prefers_config_then_cli_environment() -> None:
    config = load_config(EXAMPLES["local"])
    env = stack_env(config, {"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": "eu-west-1"})
    assert env is not None
    assert (env.account, env.region) == ("000000000000", "us-east-1")
    msk = load_config(EXAMPLES["msk"])  # sets region only
    cli = stack_env(msk, {"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": "us-east-1"})
    assert cli is not None
    assert (cli.account, cli.region) == ("111111111111", "eu-west-1")
    bare = parse_config(with_changes(example("msk"), {"region": None}))
    assert stack_env(bare, {}) is None
