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
from infra.app import project_context
from infra.bundling import bundle_function
from infra.nag import flatten_reference
from infra.stack import (
    OUTPUT_BUCKET,
    OUTPUT_DASHBOARD,
    OUTPUT_FUNCTION,
    OUTPUT_ON_FAILURE_QUEUE_ARN,
    OUTPUT_ON_FAILURE_QUEUE_URL,
    OUTPUT_QUEUE_ARN,
    OUTPUT_QUEUE_URL,
)
from tests.infra.conftest import Synthesized, as_list, example, synthesize, with_changes

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


def queue_id(result: Synthesized, construct: str) -> str:
    """The logical id of the queue of construct ``construct`` (DeadLetters or OnFailure)."""
    (found,) = [k for k in result.resources("AWS::SQS::Queue") if k.startswith(f"{construct}Queue")]
    return found


def test_default_on_failure_destination_is_its_own_queue(msk: Synthesized) -> None:
    on_failure = queue_id(msk, "OnFailure")
    for mapping in mappings(msk):
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [on_failure, "Arn"]}}}
    # The mapping sends with the function's role: to that queue, encrypted with the stack's key.
    (send,) = [s for s in msk.statements_for("sqs:SendMessage") if s["Resource"] == {"Fn::GetAtt": [on_failure, "Arn"]}]
    assert send["Sid"] == "SendToOnFailure"
    queue = msk.resources("AWS::SQS::Queue")[on_failure]["Properties"]
    key_id = next(iter(msk.resources("AWS::KMS::Key")))
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "FifoQueue" not in queue


def test_on_failure_queue_outputs(msk: Synthesized, local: Synthesized, synth: Synth) -> None:
    for result in (msk, local):  # local: no mapping, but the emulator sends to the same queue
        outputs = result.template.to_json()["Outputs"]
        on_failure = queue_id(result, "OnFailure")
        assert outputs[OUTPUT_ON_FAILURE_QUEUE_URL]["Value"] == {"Ref": on_failure}
        assert outputs[OUTPUT_ON_FAILURE_QUEUE_ARN]["Value"] == {"Fn::GetAtt": [on_failure, "Arn"]}
    to_bucket = synth(with_changes(example("msk"), {"eventSource.onFailure": "bucket"}))
    assert len(to_bucket.resources("AWS::SQS::Queue")) == 1, "no on-failure queue without the queue option"
    assert OUTPUT_ON_FAILURE_QUEUE_URL not in to_bucket.template.to_json()["Outputs"]


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
    # Neither can page on a given-up batch without the mapping's metrics (on-demand mode): synth says so.
    for result in (to_bucket, discarded):
        Annotations.from_stack(result.stack).has_warning(
            "*", Match.string_like_regexp("no alarm fires when the mapping gives up on a batch")
        )


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


def test_mapping_metrics_and_logs_on_by_default_in_provisioned_mode(self_managed: Synthesized, synth: Synth) -> None:
    defaults = synth(
        with_changes(example("self-managed"), {"eventSource.metrics": None, "eventSource.systemLogLevel": None})
    )
    for result in (self_managed, defaults):
        (mapping,) = mappings(result)
        assert mapping["MetricsConfig"] == {"Metrics": ["EventCount", "ErrorCount", "KafkaMetrics"]}
        assert mapping["LoggingConfig"] == {"SystemLogLevel": "WARN"}
    # The mapping's system logs go to the function's log group (own stream per mapping): the role may write there.
    (logs,) = self_managed.statements_for("logs:PutLogEvents")
    assert logs["Resource"] == {"Fn::GetAtt": [next(iter(self_managed.resources("AWS::Logs::LogGroup"))), "Arn"]}
    quiet = synth(
        with_changes(example("self-managed"), {"eventSource.metrics": [], "eventSource.systemLogLevel": "off"})
    )
    (mapping,) = mappings(quiet)
    assert "MetricsConfig" not in mapping
    assert "LoggingConfig" not in mapping
    chatty = synth(with_changes(example("self-managed"), {"eventSource.systemLogLevel": "DEBUG"}))
    assert mappings(chatty)[0]["LoggingConfig"] == {"SystemLogLevel": "DEBUG"}


def test_on_demand_mappings_have_no_metrics_or_logging_config(msk: Synthesized) -> None:
    """AWS offers a Kafka mapping's MetricsConfig and LoggingConfig only in provisioned mode."""
    for mapping in mappings(msk):
        assert "MetricsConfig" not in mapping
        assert "LoggingConfig" not in mapping


def test_changing_the_consumer_group_replaces_the_mapping(synth: Synth) -> None:
    """AWS cannot update a mapping's consumer group, so a new group must be a new resource (a new logical id)."""
    before = synth(example("self-managed"))
    after = synth(with_changes(example("self-managed"), {"eventSource.consumerGroupId": "kafka-s3-archiver-v2"}))
    resized = synth(with_changes(example("self-managed"), {"eventSource.batchSize": 10}))
    (old_id,) = before.resources("AWS::Lambda::EventSourceMapping")
    (new_id,) = after.resources("AWS::Lambda::EventSourceMapping")
    (resized_id,) = resized.resources("AWS::Lambda::EventSourceMapping")
    assert old_id != new_id, "a new group must replace the mapping, not update it in place"
    assert resized_id == old_id, "an updatable property keeps the mapping (and its committed offsets)"
    (mapping,) = mappings(after)
    assert mapping["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "kafka-s3-archiver-v2"}
    assert mapping["Topics"] == ["clickstream"]
    # Only the mapping and what refers to it by logical id (its alarms and the dashboard) change.
    old, new = before.template.to_json()["Resources"], after.template.to_json()["Resources"]
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    assert {old_id, new_id} <= changed
    assert {new[k]["Type"] if k in new else old[k]["Type"] for k in changed} <= {
        "AWS::Lambda::EventSourceMapping",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
    }


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
    assert sorted(flat_resources(put)) == [f"<{bucket_id}.Arn>/dead-letter/*", f"<{bucket_id}.Arn>/topics/*"]
    all_actions = {a for s in msk.statements() for a in as_list(s["Action"])}
    assert not {a for a in all_actions if a.startswith("s3:")} - {"s3:PutObject"}
    assert "cloudwatch:PutMetricData" not in all_actions, "metrics go out as EMF logs"


def test_role_may_send_to_the_two_queues_only(msk: Synthesized) -> None:
    sqs_actions = [s for s in msk.statements() if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert {s["Action"] for s in sqs_actions} == {"sqs:SendMessage"}
    assert sorted(s["Resource"]["Fn::GetAtt"][0] for s in sqs_actions) == sorted(
        [queue_id(msk, "DeadLetters"), queue_id(msk, "OnFailure")]
    )


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
    assert sorted(flat_resources(put)) == [
        "arn:<AWS::Partition>:s3:::corp-kafka-archive/dead-letter/*",
        "arn:<AWS::Partition>:s3:::corp-kafka-archive/topics/*",
    ]
    for queue in result.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_dead_letter_queue_encrypted_14_days_redrive_friendly(msk: Synthesized, local: Synthesized) -> None:
    key_id = next(iter(msk.resources("AWS::KMS::Key")))
    queue = msk.resources("AWS::SQS::Queue")[queue_id(msk, "DeadLetters")]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["VisibilityTimeout"] == 300
    assert "FifoQueue" not in queue, "on-failure destinations must be standard queues"
    for queue in local.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for policy in msk.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


# ------------------------------------------------------------------------------------------------ function


@pytest.mark.parametrize("fixture", ["msk", "self_managed", "local"])
def test_function_environment_round_trips_through_settings(fixture: str, request: pytest.FixtureRequest) -> None:
    result: Synthesized = request.getfixturevalue(fixture)
    variables = result.only("AWS::Lambda::Function")["Environment"]["Variables"]
    bucket_id = next(iter(result.resources("AWS::S3::Bucket")))
    assert variables["ARCHIVE_BUCKET"] == {"Ref": bucket_id}
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": queue_id(result, "DeadLetters")}
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


# ------------------------------------------------------------------------------------------------ outputs, switch


def test_outputs_for_local_tooling(msk: Synthesized, local: Synthesized) -> None:
    outputs = msk.template.to_json()["Outputs"]
    for name in (
        OUTPUT_BUCKET,
        OUTPUT_QUEUE_URL,
        OUTPUT_QUEUE_ARN,
        OUTPUT_FUNCTION,
        OUTPUT_DASHBOARD,
        OUTPUT_ON_FAILURE_QUEUE_URL,
        OUTPUT_ON_FAILURE_QUEUE_ARN,
    ):
        assert name in outputs, name


def test_without_event_source_everything_else_is_identical(synth: Synth) -> None:
    data = example("local")
    bundle = bundle_function(architecture="x86_64")  # one bundle for both, even if the code changes meanwhile
    full = synth(data, asset_dir=bundle)
    bare = synth(data, with_event_source=False, asset_dir=bundle)
    full_resources = full.template.to_json()["Resources"]
    bare_resources = bare.template.to_json()["Resources"]
    # The mappings go, and so do the alarms that watch them (heartbeat, lag) and the dashboard's alarm list.
    dropped = {k for k, v in full_resources.items() if v["Type"] == "AWS::Lambda::EventSourceMapping"}
    watching = {k for k in full_resources if k.startswith(("MonitoringNothingArchived", "MonitoringOffsetLagHigh"))}
    assert dropped
    assert len(watching) == 2
    assert set(full_resources) - dropped - watching == set(bare_resources)
    for logical_id, resource in bare_resources.items():
        if resource["Type"] == "AWS::IAM::Policy":
            # The mapping sends given-up batches with the role: that grant goes with it.
            statements = full_resources[logical_id]["Properties"]["PolicyDocument"]["Statement"]
            kept = [s for s in statements if not s.get("Sid", "").endswith("OnFailure")]
            assert len(kept) == len(statements) - 1
            assert resource["Properties"]["PolicyDocument"]["Statement"] == kept
        elif resource["Type"] != "AWS::CloudWatch::Dashboard":
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


def test_recommended_feature_flags_only_sort_the_role_statements(msk: Synthesized) -> None:
    """cdk.json's recommended flags (docs/deploy.md, "Feature flags") replace nothing: same resources, same logical
    ids; only the role's statements have their actions and resources sorted (minimizePolicies)."""
    flags = {key: None for key in project_context() if key.startswith("@aws-cdk")}
    without = synthesize(example("msk"), context=flags, asset_dir=msk.stack.archiver.asset_dir)
    with_flags = msk.template.to_json()["Resources"]
    old = without.template.to_json()["Resources"]
    assert set(old) == set(with_flags)
    changed = {k for k in old if old[k] != with_flags[k]}
    # The maintenance nested stack changes only its template's address: its own roles' statements are sorted too.
    nested = {k for k in changed if old[k]["Type"] == "AWS::CloudFormation::Stack"}
    for k in nested:
        assert {**old[k]["Properties"], "TemplateURL": None} == {**with_flags[k]["Properties"], "TemplateURL": None}
    changed -= nested
    assert {old[k]["Type"] for k in changed} == {"AWS::IAM::Policy"}

    def canonical(statements: list[dict[str, Any]]) -> list[str]:
        def norm(value: Any) -> Any:
            return sorted(json.dumps(v, sort_keys=True) for v in value) if isinstance(value, list) else value

        return sorted(json.dumps({k: norm(v) for k, v in s.items()}, sort_keys=True) for s in statements)

    for k in changed:
        before = old[k]["Properties"]["PolicyDocument"]["Statement"]
        after = with_flags[k]["Properties"]["PolicyDocument"]["Statement"]
        assert canonical(before) == canonical(after)
