"""The synthesized template, per source kind and main option: ESM, IAM, bucket, queue, function, monitoring.

Every stack here is synthesized with cdk-nag's AwsSolutions checks registered (see conftest.synthesize), so each
synth that succeeds also proves there is no unacknowledged finding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from archiver.settings import Settings
from infra.bundling import bundle_function
from infra.nag import flatten_reference
from infra.stack import (
    OUTPUT_ALARM_TOPIC,
    OUTPUT_BUCKET,
    OUTPUT_DASHBOARD,
    OUTPUT_FUNCTION,
    OUTPUT_QUEUE_ARN,
    OUTPUT_QUEUE_URL,
)
from tests.infra.conftest import Synthesized, as_list, example, with_changes

Synth = Callable[..., Synthesized]

CLUSTER = "arn:aws:kafka:eu-west-1:123456789012:cluster/orders-cluster/7d7131e1-25c5-4e9a-9a3b-1c8c6f8d9a01-2"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/archiver-AbCdEf"
ROOT_CA = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka/root-ca-GhIjKl"


def flat_resources(statement: dict[str, Any]) -> list[str]:
    return [flatten_reference(resource) for resource in as_list(statement["Resource"])]


def mappings(result: Synthesized) -> list[dict[str, Any]]:
    return [dict(r["Properties"]) for r in result.resources("AWS::Lambda::EventSourceMapping").values()]


# ------------------------------------------------------------------------------------------------ event source


def test_msk_mapping_per_topic_with_consumer_group_and_batching(msk: Synthesized) -> None:
    found = sorted(mappings(msk), key=lambda m: m["Topics"])
    assert [m["Topics"] for m in found] == [["orders"], ["payments"]]
    for mapping, group in zip(found, ["kafka-s3-archiver-orders", "kafka-s3-archiver-payments"], strict=True):
        assert mapping["EventSourceArn"] == CLUSTER
        assert mapping["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": group}
        assert mapping["BatchSize"] == 1000
        assert mapping["MaximumBatchingWindowInSeconds"] == 10
        assert mapping["StartingPosition"] == "TRIM_HORIZON"
        assert mapping["Enabled"] is True
        # IAM auth: no SourceAccessConfigurations, Lambda uses the execution role.
        assert "SourceAccessConfigurations" not in mapping
        # Kafka error-handling controls are provisioned-mode only, so none are set here.
        for key in ("MaximumRetryAttempts", "BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds"):
            assert key not in mapping


def test_default_on_failure_destination_is_the_dead_letter_queue(msk: Synthesized) -> None:
    queue_id = next(iter(msk.resources("AWS::SQS::Queue")))
    for mapping in mappings(msk):
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}}


def test_on_failure_bucket_and_none(synth: Synth) -> None:
    to_bucket = synth(with_changes(example("msk"), {"eventSource.onFailure": "bucket"}))
    bucket_id = next(iter(to_bucket.resources("AWS::S3::Bucket")))
    for mapping in mappings(to_bucket):
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [bucket_id, "Arn"]}}}
    puts = [r for s in to_bucket.statements_for("s3:PutObject") for r in flat_resources(s)]
    assert f"<{bucket_id}.Arn>/aws/lambda/*" in puts
    (listing,) = to_bucket.statements_for("s3:ListBucket")
    assert listing["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}

    discarded = synth(with_changes(example("msk"), {"eventSource.onFailure": "none"}))
    assert all("DestinationConfig" not in mapping for mapping in mappings(discarded))


def test_msk_iam_auth_is_scoped_to_cluster_topics_and_groups(msk: Synthesized) -> None:
    by_sid = {s.get("Sid"): s for s in msk.statements()}
    prefix = "arn:aws:kafka:eu-west-1:123456789012"
    cluster_path = "orders-cluster/7d7131e1-25c5-4e9a-9a3b-1c8c6f8d9a01-2"
    assert set(by_sid["ConnectToCluster"]["Action"]) == {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
    }
    assert by_sid["ConnectToCluster"]["Resource"] == CLUSTER
    assert set(by_sid["ReadTopics"]["Action"]) == {"kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"}
    assert by_sid["ReadTopics"]["Resource"] == [
        f"{prefix}:topic/{cluster_path}/orders",
        f"{prefix}:topic/{cluster_path}/payments",
    ]
    assert set(by_sid["UseConsumerGroups"]["Action"]) == {"kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"}
    assert by_sid["UseConsumerGroups"]["Resource"] == [
        f"{prefix}:group/{cluster_path}/kafka-s3-archiver-orders",
        f"{prefix}:group/{cluster_path}/kafka-s3-archiver-payments",
    ]
    assert set(by_sid["DescribeCluster"]["Action"]) == {"kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"}
    assert by_sid["DescribeCluster"]["Resource"] == CLUSTER
    assert not msk.statements_for("secretsmanager:GetSecretValue")


def test_msk_network_access_for_the_mapping(msk: Synthesized) -> None:
    by_sid = {s.get("Sid"): s for s in msk.statements()}
    assert set(by_sid["ManageMappingInterfaces"]["Action"]) == {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
    }
    assert all(
        r.startswith("arn:aws:ec2:eu-west-1:123456789012:") for r in flat_resources(by_sid["ManageMappingInterfaces"])
    )
    assert by_sid["DescribeMappingNetwork"]["Resource"] == "*"
    assert all(a.startswith("ec2:Describe") for a in by_sid["DescribeMappingNetwork"]["Action"])
    ingress = msk.only("AWS::EC2::SecurityGroupIngress")
    assert ingress["GroupId"] == ingress["SourceSecurityGroupId"] == "sg-0123456789abcdef0"
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (9098, 9098, "tcp")


def test_msk_sasl_scram(synth: Synth) -> None:
    scram_secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_archiver-AbCdEf"
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    result = synth(
        with_changes(
            example("msk"),
            {"msk.auth": "sasl-scram-512", "msk.secretArn": scram_secret, "msk.secretKmsKeyArn": key},
        )
    )
    for mapping in mappings(result):
        assert mapping["SourceAccessConfigurations"] == [{"Type": "SASL_SCRAM_512_AUTH", "URI": scram_secret}]
    (read,) = result.statements_for("secretsmanager:GetSecretValue")
    assert read["Resource"] == scram_secret
    decrypt = [s for s in result.statements_for("kms:Decrypt") if s["Resource"] == key]
    assert len(decrypt) == 1
    assert not result.statements_for("kafka-cluster:Connect")
    assert result.only("AWS::EC2::SecurityGroupIngress")["FromPort"] == 9096


def test_self_managed_vpc_scram_with_root_ca_and_provisioned_mode(self_managed: Synthesized) -> None:
    (mapping,) = mappings(self_managed)
    assert mapping["SelfManagedEventSource"] == {
        "Endpoints": {
            "KafkaBootstrapServers": ["b-1.kafka.internal.example.com:9096", "b-2.kafka.internal.example.com:9096"]
        }
    }
    assert mapping["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "kafka-s3-archiver"}
    assert "EventSourceArn" not in mapping
    assert mapping["Topics"] == ["clickstream"]
    assert mapping["StartingPosition"] == "LATEST"
    assert mapping["BatchSize"] == 5000
    assert mapping["MaximumBatchingWindowInSeconds"] == 30
    assert mapping["ProvisionedPollerConfig"] == {"MinimumPollers": 1, "MaximumPollers": 10}
    assert mapping["MaximumRetryAttempts"] == 10
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["SourceAccessConfigurations"] == [
        {"Type": "SASL_SCRAM_512_AUTH", "URI": SECRET},
        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ROOT_CA},
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123456789abcdef0"},
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0fedcba9876543210"},
        {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123456789abcdef0"},
    ]
    (read,) = self_managed.statements_for("secretsmanager:GetSecretValue")
    assert read["Resource"] == [SECRET, ROOT_CA]
    (interfaces,) = self_managed.statements_for("ec2:CreateNetworkInterface")
    flat = flat_resources(interfaces)
    assert any(r.endswith(":subnet/subnet-0123456789abcdef0") for r in flat)
    assert any(r.endswith(":security-group/sg-0123456789abcdef0") for r in flat)
    assert not any(r.endswith(("subnet/*", "security-group/*")) for r in flat), "scoped to the configured ids"
    assert not self_managed.resources("AWS::EC2::SecurityGroupIngress")


@pytest.mark.parametrize(
    ("auth", "kind"),
    [
        ("sasl-scram-256", "SASL_SCRAM_256_AUTH"),
        ("sasl-scram-512", "SASL_SCRAM_512_AUTH"),
        ("plain", "BASIC_AUTH"),
        ("mtls", "CLIENT_CERTIFICATE_TLS_AUTH"),
    ],
)
def test_self_managed_auth_kinds_over_public_endpoints(synth: Synth, auth: str, kind: str) -> None:
    data = with_changes(example("self-managed"), {"selfManaged.auth": auth, "selfManaged.vpc": None})
    result = synth(data)
    (mapping,) = mappings(result)
    assert mapping["SourceAccessConfigurations"] == [
        {"Type": kind, "URI": SECRET},
        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ROOT_CA},
    ]
    assert not result.statements_for("ec2:CreateNetworkInterface"), "no VPC, no interfaces"


def test_self_managed_without_auth_or_vpc_warns(synth: Synth) -> None:
    result = synth(example("local"))
    (mapping,) = mappings(result)
    assert "SourceAccessConfigurations" not in mapping
    Annotations.from_stack(result.stack).has_warning("*", Match.string_like_regexp("only with authentication"))


def test_at_timestamp_and_record_age(synth: Synth) -> None:
    result = synth(
        with_changes(
            example("self-managed"),
            {
                "eventSource.startingPosition": "AT_TIMESTAMP",
                "eventSource.startingPositionTimestamp": 1764115200,
                "eventSource.maxRecordAgeSeconds": -1,
                "eventSource.retryAttempts": -1,
                "eventSource.enabled": False,
            },
        )
    )
    (mapping,) = mappings(result)
    assert mapping["StartingPosition"] == "AT_TIMESTAMP"
    assert mapping["StartingPositionTimestamp"] == 1764115200
    assert mapping["MaximumRecordAgeInSeconds"] == -1
    assert mapping["MaximumRetryAttempts"] == -1
    assert mapping["Enabled"] is False


def test_mapping_waits_for_the_role_policy(msk: Synthesized) -> None:
    policy_id = next(iter(msk.resources("AWS::IAM::Policy")))
    for mapping in msk.resources("AWS::Lambda::EventSourceMapping").values():
        assert policy_id in mapping["DependsOn"]


# ------------------------------------------------------------------------------------------------ IAM


def test_no_wildcard_resources_except_where_aws_requires_them(msk: Synthesized, self_managed: Synthesized) -> None:
    for result in (msk, self_managed):
        for statement in result.statements():
            if statement["Resource"] == "*" or "*" in as_list(statement["Resource"]):
                actions = as_list(statement["Action"])
                assert all(a.startswith(("ec2:Describe", "xray:")) for a in actions), statement


def test_function_may_put_only_under_archive_and_dead_letter_prefixes(msk: Synthesized) -> None:
    (put,) = msk.statements_for("s3:PutObject")
    assert put["Action"] == "s3:PutObject"
    bucket_id = next(iter(msk.resources("AWS::S3::Bucket")))
    assert flat_resources(put) == [f"<{bucket_id}.Arn>/topics/*", f"<{bucket_id}.Arn>/dead-letter/*"]
    all_actions = {a for s in msk.statements() for a in as_list(s["Action"])}
    assert not {a for a in all_actions if a.startswith("s3:")} - {"s3:PutObject"}
    assert "cloudwatch:PutMetricData" not in all_actions, "metrics go out as EMF logs"


def test_function_may_send_to_the_dead_letter_queue_only(msk: Synthesized) -> None:
    queue_id = next(iter(msk.resources("AWS::SQS::Queue")))
    sqs_actions = [s for s in msk.statements() if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert len(sqs_actions) == 1
    assert sqs_actions[0]["Action"] == "sqs:SendMessage"
    assert sqs_actions[0]["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_kms_use_only_as_needed(msk: Synthesized, local: Synthesized, synth: Synth) -> None:
    key_id = next(iter(msk.resources("AWS::KMS::Key")))
    kms = [s for s in msk.statements() if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert {tuple(sorted(as_list(s["Action"]))) for s in kms} == {
        ("kms:GenerateDataKey",),  # SSE-KMS puts
        ("kms:Decrypt", "kms:GenerateDataKey"),  # sending to the KMS-encrypted queue
    }
    for statement in kms:
        assert statement["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    # SSE-S3 and SQS-managed encryption: no KMS at all.
    assert not local.resources("AWS::KMS::Key")
    assert not [s for s in local.statements() if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    existing_key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    existing = synth(
        with_changes(
            example("msk"),
            {"bucket": {"existingBucketName": "corp-kafka-archive", "existingBucketKmsKeyArn": existing_key}},
        )
    )
    puts_key = [s for s in existing.statements_for("kms:GenerateDataKey") if s["Resource"] == existing_key]
    assert len(puts_key) == 1


def test_no_managed_policies_and_logs_only_to_own_group(msk: Synthesized) -> None:
    role = msk.only("AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role
    (logs,) = msk.statements_for("logs:PutLogEvents")
    log_group_id = next(iter(msk.resources("AWS::Logs::LogGroup")))
    assert logs["Resource"] == {"Fn::GetAtt": [log_group_id, "Arn"]}


def test_tracing_adds_xray(self_managed: Synthesized, msk: Synthesized) -> None:
    assert self_managed.only("AWS::Lambda::Function")["TracingConfig"] == {"Mode": "Active"}
    assert self_managed.statements_for("xray:PutTraceSegments")
    assert "TracingConfig" not in msk.only("AWS::Lambda::Function")
    assert not msk.statements_for("xray:PutTraceSegments")


# ------------------------------------------------------------------------------------------------ bucket and queue


def test_bucket_sse_kms_with_stack_key(msk: Synthesized) -> None:
    bucket = msk.only("AWS::S3::Bucket")
    key_id = next(iter(msk.resources("AWS::KMS::Key")))
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert rule["BucketKeyEnabled"] is True
    assert msk.only("AWS::KMS::Key")["EnableKeyRotation"] is True


def test_bucket_sse_s3_option(local: Synthesized) -> None:
    (rule,) = local.only("AWS::S3::Bucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("fixture", ["msk", "self_managed", "local"])
def test_bucket_blocks_public_access_and_requires_tls(fixture: str, request: pytest.FixtureRequest) -> None:
    result: Synthesized = request.getfixturevalue(fixture)
    bucket = result.only("AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    policy = result.only("AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    tls = [s for s in policy if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert len(tls) == 1
    assert tls[0]["Effect"] == "Deny"
    assert tls[0]["Action"] == "s3:*"
    assert tls[0]["Principal"] == {"AWS": "*"}


def test_bucket_lifecycle_and_versioning(msk: Synthesized, self_managed: Synthesized) -> None:
    rules = {r["Id"]: r for r in msk.only("AWS::S3::Bucket")["LifecycleConfiguration"]["Rules"]}
    assert rules["Archive"]["Prefix"] == "topics/"
    assert rules["Archive"]["ExpirationInDays"] == 730
    assert rules["Archive"]["Transitions"] == [
        {"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 0},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]
    assert rules["DeadLetter"] == {
        "ExpirationInDays": 30,
        "Id": "DeadLetter",
        "Prefix": "dead-letter/",
        "Status": "Enabled",
    }
    assert "VersioningConfiguration" not in msk.only("AWS::S3::Bucket")
    bucket = self_managed.only("AWS::S3::Bucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["NoncurrentVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


def test_retain_and_destroy_removal_policies(msk: Synthesized, local: Synthesized) -> None:
    (bucket,) = msk.resources("AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Retain"
    (bucket,) = local.resources("AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Delete"


def test_existing_bucket_is_used_not_created(synth: Synth) -> None:
    result = synth(with_changes(example("msk"), {"bucket": {"existingBucketName": "corp-kafka-archive"}}))
    assert not result.resources("AWS::S3::Bucket")
    assert not result.resources("AWS::KMS::Key")
    env = result.only("AWS::Lambda::Function")["Environment"]["Variables"]
    assert env["ARCHIVE_BUCKET"] == "corp-kafka-archive"
    (put,) = result.statements_for("s3:PutObject")
    assert flat_resources(put) == [
        "arn:<AWS::Partition>:s3:::corp-kafka-archive/topics/*",
        "arn:<AWS::Partition>:s3:::corp-kafka-archive/dead-letter/*",
    ]
    assert result.only("AWS::SQS::Queue")["SqsManagedSseEnabled"] is True


def test_dead_letter_queue_encrypted_14_days_redrive_friendly(msk: Synthesized, local: Synthesized) -> None:
    key_id = next(iter(msk.resources("AWS::KMS::Key")))
    queue = msk.only("AWS::SQS::Queue")
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["VisibilityTimeout"] == 300
    assert "FifoQueue" not in queue, "on-failure destinations must be standard queues"
    assert local.only("AWS::SQS::Queue")["SqsManagedSseEnabled"] is True
    policy = msk.only("AWS::SQS::QueuePolicy")["PolicyDocument"]["Statement"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


# ------------------------------------------------------------------------------------------------ function


@pytest.mark.parametrize("fixture", ["msk", "self_managed", "local"])
def test_function_environment_round_trips_through_settings(fixture: str, request: pytest.FixtureRequest) -> None:
    result: Synthesized = request.getfixturevalue(fixture)
    variables = result.only("AWS::Lambda::Function")["Environment"]["Variables"]
    bucket_id = next(iter(result.resources("AWS::S3::Bucket")))
    queue_id = next(iter(result.resources("AWS::SQS::Queue")))
    assert variables["ARCHIVE_BUCKET"] == {"Ref": bucket_id}
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": queue_id}
    # What CloudFormation will put in place of the two references:
    bucket = "kafkas3archiver-archivebucket49f1ac64-1x2y3z4w5v6u"
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/KafkaS3Archiver-DeadLettersQueue631681B1-abc"
    env = {**variables, "ARCHIVE_BUCKET": bucket, "DEAD_LETTER_QUEUE_URL": queue}
    assert all(isinstance(v, str) for v in env.values())
    expected = result.config.archive.settings(bucket_name=bucket, dead_letter_queue_url=queue)
    assert Settings.from_env(env) == expected
    assert env["POWERTOOLS_SERVICE_NAME"] == result.config.stack_name
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "KafkaS3Archiver"


def test_function_runtime_architecture_memory_timeout_logs(msk: Synthesized, local: Synthesized) -> None:
    function = msk.only("AWS::Lambda::Function")
    assert function["Runtime"] == "python3.13"
    assert function["Handler"] == "handler.lambda_handler"
    assert function["Architectures"] == ["arm64"]
    assert (function["MemorySize"], function["Timeout"]) == (1024, 120)
    assert msk.only("AWS::Logs::LogGroup")["RetentionInDays"] == 30
    log_group_id = next(iter(msk.resources("AWS::Logs::LogGroup")))
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    local_function = local.only("AWS::Lambda::Function")
    assert local_function["Architectures"] == ["x86_64"]
    assert (local_function["MemorySize"], local_function["Timeout"]) == (512, 60)


def test_asset_is_the_local_bundle_for_the_architecture(msk: Synthesized, local: Synthesized) -> None:
    for result, triplet in ((msk, "aarch64"), (local, "x86_64")):
        bundle = result.stack.archiver.asset_dir
        assert (bundle / "handler.py").is_file()
        assert list(bundle.glob(f"fastavro/_read.*{triplet}*.so")), bundle


# ------------------------------------------------------------------------------------------------ monitoring


def dashboard(result: Synthesized) -> dict[str, Any]:
    body = result.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    parsed: dict[str, Any] = json.loads(render(body))
    return parsed


def render(node: Any) -> str:
    """A Fn::Join'ed string with each reference replaced by a <Ref> placeholder (JSON-safe)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return str(delimiter).join(render(item) for item in items)
    if isinstance(node, dict) and "Ref" in node:
        return f"<{node['Ref']}>"
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return "<{}.{}>".format(*node["Fn::GetAtt"])
    return json.dumps(node)


def dashboard_metrics(result: Synthesized) -> set[str]:
    names = set()
    for widget in dashboard(result)["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            names.add(f"{metric[0]}/{metric[1]}")
    return names


def test_dashboard_shows_lag_invocations_custom_metrics_and_queue(msk: Synthesized) -> None:
    names = dashboard_metrics(msk)
    for expected in (
        "AWS/Lambda/OffsetLag",
        "AWS/Lambda/Invocations",
        "AWS/Lambda/Errors",
        "AWS/Lambda/Throttles",
        "AWS/Lambda/Duration",
        "AWS/Lambda/ConcurrentExecutions",
        "KafkaS3Archiver/RecordsArchived",
        "KafkaS3Archiver/BytesWritten",
        "KafkaS3Archiver/ObjectsWritten",
        "KafkaS3Archiver/RecordsDeadLettered",
        "AWS/SQS/ApproximateNumberOfMessagesVisible",
        "AWS/SQS/ApproximateAgeOfOldestMessage",
    ):
        assert expected in names, expected
    text = json.dumps(dashboard(msk))
    assert '"stat": "p50"' in text
    assert '"stat": "p99"' in text
    assert '"service", "KafkaS3Archiver"' in text, "custom metrics use the service dimension"
    assert msk.only("AWS::CloudWatch::Dashboard")["DashboardName"] == "KafkaS3Archiver"


def alarms(result: Synthesized) -> dict[str, dict[str, Any]]:
    found = {}
    for properties in (r["Properties"] for r in result.resources("AWS::CloudWatch::Alarm").values()):
        name = properties.get("MetricName") or properties["Metrics"][0]["MetricStat"]["Metric"]["MetricName"]
        found[name] = properties
    return found


def test_alarms_for_dlq_errors_lag_and_throttles(msk: Synthesized) -> None:
    found = alarms(msk)
    assert set(found) == {"ApproximateNumberOfMessagesVisible", "Errors", "OffsetLag", "Throttles"}
    dlq = found["ApproximateNumberOfMessagesVisible"]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    lag = found["OffsetLag"]
    assert (lag["Threshold"], lag["EvaluationPeriods"], lag["Statistic"]) == (10000, 15, "Maximum")
    assert lag["ComparisonOperator"] == "GreaterThanThreshold"
    assert found["Errors"]["Threshold"] == 1
    assert found["Throttles"]["Threshold"] == 1
    topic_id = next(iter(msk.resources("AWS::SNS::Topic")))
    for alarm in found.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"
    subscription = msk.only("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "platform-oncall@example.com")


def test_alarm_notifications_are_optional(local: Synthesized, synth: Synth) -> None:
    assert not local.resources("AWS::SNS::Topic")
    assert all("AlarmActions" not in alarm for alarm in alarms(local).values())
    topic = "arn:aws:sns:eu-west-1:123456789012:platform-alarms"
    existing = synth(with_changes(example("local"), {"monitoring": {"alarmTopicArn": topic}}))
    assert not existing.resources("AWS::SNS::Topic")
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms(existing).values())


# ------------------------------------------------------------------------------------------------ outputs, switch


def test_outputs_for_local_tooling(msk: Synthesized, local: Synthesized) -> None:
    outputs = msk.template.to_json()["Outputs"]
    for name in (
        OUTPUT_BUCKET,
        OUTPUT_QUEUE_URL,
        OUTPUT_QUEUE_ARN,
        OUTPUT_FUNCTION,
        OUTPUT_DASHBOARD,
        OUTPUT_ALARM_TOPIC,
    ):
        assert name in outputs, name
    assert OUTPUT_ALARM_TOPIC not in local.template.to_json()["Outputs"]


def test_without_event_source_everything_else_is_identical(synth: Synth) -> None:
    data = example("local")
    bundle = bundle_function(architecture="x86_64")  # one bundle for both, even if the code changes meanwhile
    full = synth(data, asset_dir=bundle)
    bare = synth(data, with_event_source=False, asset_dir=bundle)
    full_resources = full.template.to_json()["Resources"]
    bare_resources = bare.template.to_json()["Resources"]
    dropped = {k for k, v in full_resources.items() if v["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert dropped
    assert set(full_resources) - dropped == set(bare_resources)
    for logical_id, resource in bare_resources.items():
        assert resource == full_resources[logical_id], logical_id
    assert full.template.to_json()["Outputs"] == bare.template.to_json()["Outputs"]


def test_without_event_source_drops_mapping_only_grants(synth: Synth) -> None:
    bare = synth(example("msk"), with_event_source=False)
    assert not bare.resources("AWS::Lambda::EventSourceMapping")
    assert not bare.resources("AWS::EC2::SecurityGroupIngress")
    actions = {a for s in bare.statements() for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith(("kafka", "ec2:"))}
    assert {"s3:PutObject", "sqs:SendMessage"} <= actions


def test_tags_apply_to_resources(msk: Synthesized) -> None:
    msk.template.has_resource_properties(
        "AWS::Lambda::Function", {"Tags": Match.array_with([{"Key": "application", "Value": "kafka-s3-archiver"}])}
    )
