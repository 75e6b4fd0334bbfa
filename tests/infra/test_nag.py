"""cdk-nag AwsSolutions: no unacknowledged findings for any option, and every acknowledgment says why.

Every stack the other infra tests synthesize already runs the checks (a finding fails the synth); this module adds
the variants those tests do not build, proves the checks are really active, and audits the acknowledgments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from tests.infra.conftest import Synthesized, example, synthesize, with_changes
from tests.infra.test_config import FULL_MSK, FULL_SELF_MANAGED

Synth = Callable[..., Synthesized]

# Rules acknowledged somewhere in the stack, and where they may appear (construct path suffixes).
EXPECTED_RULES = {
    "AwsSolutions-S1": ("/Archive/Bucket",),
    "AwsSolutions-SQS3": ("/DeadLetters/Queue", "/OnFailure/Queue", "/Maintenance/WorkDeadLetters"),
    "AwsSolutions-L1": ("/Archiver/Function", "/Maintenance/Planner", "/Maintenance/Worker", "/Maintenance/Audit"),
    "AwsSolutions-IAM5": ("/Archiver/Role", "/Maintenance/WorkerRole", "/Maintenance/AuditRole"),
}


def acknowledgments(result: Synthesized) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) for every acknowledgment in the stack."""
    found = []
    for construct in result.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    found.append((construct.node.path, rule.removeprefix("Annotation::"), str(reason)))
    return found


VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "msk-scram": (
        "msk",
        {
            "msk.auth": "sasl-scram-512",
            "msk.secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_a-AbCdEf",
            "msk.secretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
    ),
    "msk-tracing-bucket-on-failure": ("msk", {"function.tracing": True, "eventSource.onFailure": "bucket"}),
    "msk-existing-bucket": ("msk", {"bucket": {"existingBucketName": "corp-kafka-archive"}}),
    "msk-access-logs": ("msk", {"bucket.serverAccessLogsBucketName": "corp-access-logs"}),
    "self-managed-public-mtls": ("self-managed", {"selfManaged.auth": "mtls", "selfManaged.vpc": None}),
    "self-managed-x86-sse-s3": ("self-managed", {"function.architecture": "x86_64", "bucket.encryption": "s3"}),
    "local-with-event-source": ("local", {}),
    "root-prefix": ("local", {"archive.prefix": ""}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_has_no_unacknowledged_findings(synth: Synth, variant: str) -> None:
    base, changes = VARIANTS[variant]
    result = synth(with_changes(example(base), changes))  # raises on any unacknowledged finding
    assert result.template.find_resources("AWS::Lambda::Function")


@pytest.mark.parametrize("data", [FULL_MSK, FULL_SELF_MANAGED], ids=["full-msk", "full-self-managed"])
def test_every_field_at_once_has_no_unacknowledged_findings(synth: Synth, data: dict[str, Any]) -> None:
    result = synth(data)
    assert result.template.find_resources("AWS::Lambda::EventSourceMapping")


@pytest.mark.parametrize("fixture", ["msk", "self_managed", "local", "typed"])
def test_every_acknowledgment_has_a_reason_and_a_known_place(fixture: str, request: pytest.FixtureRequest) -> None:
    result: Synthesized = request.getfixturevalue(fixture)
    found = acknowledgments(result)
    assert found
    for path, rule, reason in found:
        base_rule = rule.split("[", 1)[0]
        assert base_rule in EXPECTED_RULES, (path, rule)
        assert path.endswith(EXPECTED_RULES[base_rule]), (path, rule)
        assert len(reason) >= 40, (rule, reason)


def test_wildcard_acknowledgments_name_each_resource(msk: Synthesized) -> None:
    rules = {rule for _, rule, _ in acknowledgments(msk)}
    iam5 = {rule for rule in rules if rule.startswith("AwsSolutions-IAM5")}
    assert "AwsSolutions-IAM5" not in iam5, "no blanket IAM5 acknowledgment"
    assert all(rule.startswith("AwsSolutions-IAM5[Resource::") for rule in iam5)
    assert not any("Action::" in rule for rule in iam5), "no wildcard actions at all"


def test_access_logs_bucket_removes_the_s1_acknowledgment(synth: Synth) -> None:
    result = synth(with_changes(example("msk"), {"bucket.serverAccessLogsBucketName": "corp-access-logs"}))
    assert not [rule for _, rule, _ in acknowledgments(result) if rule == "AwsSolutions-S1"]
    logging = result.only("AWS::S3::Bucket")["LoggingConfiguration"]
    assert logging == {"DestinationBucketName": "corp-access-logs", "LogFilePrefix": "KafkaS3Archiver/"}


def test_checks_are_active_an_unacknowledged_finding_fails_the_synth() -> None:
    def add_unsafe_bucket(stack: cdk.Stack) -> None:
        s3.Bucket(stack, "Unsafe")  # no TLS-only policy, no access logs, no acknowledgment

    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-S10"):
        synthesize(example("local"), tamper=add_unsafe_bucket)
