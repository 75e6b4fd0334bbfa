"""What AWS would reject at deploy fails at synth: cfn-lint on every synthesized template, and CDK's own
template validation (``@aws-cdk/core:validateAgainstDefaultRules`` in cdk.json) turned into errors.

The probe configs cover every auth kind (MSK IAM and SCRAM; self-managed SCRAM-256/512, PLAIN, mTLS, none),
on-demand and provisioned mode, and every on-failure destination.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_
from cfnlint.api import lint

from infra.stack import ArchiverStack
from tests.infra.conftest import Synthesized, example, synthesize, with_changes
from tests.infra.test_config import FULL_MSK, FULL_SELF_MANAGED, KMS_KEY, SCRAM_SECRET

Synth = Callable[..., Synthesized]

# cfn-lint findings accepted, each with its reason.
ACCEPTED = {
    # CDK adds DependsOn: <role> to the function although Role: GetAtt already orders them; harmless, and CDK's
    # own template validation ignores W3005 too (aws-cdk-lib 2.275, CloudFormationValidatePlugin IGNORE_RULES).
    "W3005",
}
PROVISIONED = {"eventSource.provisionedPollers": {"minimum": 1, "maximum": 4}}
PROBES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "msk-example": ("msk", {}, True),
    "self-managed-example": ("self-managed", {}, True),
    "typed-example": ("typed", {}, True),
    "local-example": ("local", {}, False),
    "local-with-mapping": ("local", {}, True),
    "msk-scram": (
        "msk",
        {"msk.auth": "sasl-scram-512", "msk.secretArn": SCRAM_SECRET, "msk.secretKmsKeyArn": KMS_KEY},
        True,
    ),
    "msk-provisioned": ("msk", PROVISIONED, True),
    "msk-provisioned-bucket": ("msk", {**PROVISIONED, "eventSource.onFailure": "bucket"}, True),
    "msk-on-failure-none": ("msk", {"eventSource.onFailure": "none"}, True),
    "self-managed-scram-256": ("self-managed", {"selfManaged.auth": "sasl-scram-256"}, True),
    "self-managed-plain-public": ("self-managed", {"selfManaged.auth": "plain", "selfManaged.vpc": None}, True),
    "self-managed-mtls-public": ("self-managed", {"selfManaged.auth": "mtls", "selfManaged.vpc": None}, True),
    "self-managed-none-vpc": (
        "self-managed",
        {"selfManaged.auth": "none", "selfManaged.secretArn": None, "selfManaged.rootCaSecretArn": None},
        True,
    ),
    "self-managed-on-demand": (
        "self-managed",
        {
            "eventSource.provisionedPollers": None,
            "eventSource.retryAttempts": None,
            "eventSource.bisectBatchOnError": None,
            "eventSource.metrics": None,
            "eventSource.systemLogLevel": None,
        },
        True,
    ),
}


def findings(result: Synthesized) -> list[str]:
    region = result.config.region or "eu-west-1"
    matches = lint(json.dumps(result.template.to_json()), regions=[region])
    return [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches if m.rule.id not in ACCEPTED]


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_cfn_lint_finds_nothing(synth: Synth, probe: str) -> None:
    base, changes, with_event_source = PROBES[probe]
    result = synth(with_changes(example(base), changes), with_event_source=with_event_source)
    assert findings(result) == []


@pytest.mark.parametrize("data", [FULL_MSK, FULL_SELF_MANAGED], ids=["full-msk", "full-self-managed"])
def test_cfn_lint_finds_nothing_with_every_field_set(synth: Synth, data: dict[str, Any]) -> None:
    assert findings(synth(data)) == []


def test_probes_cover_every_auth_kind_and_mode(synth: Synth) -> None:
    access_types, modes, destinations = set(), set(), set()
    for base, changes, with_event_source in PROBES.values():
        result = synth(with_changes(example(base), changes), with_event_source=with_event_source)
        for mapping in result.resources("AWS::Lambda::EventSourceMapping").values():
            properties = mapping["Properties"]
            access_types |= {a["Type"] for a in properties.get("SourceAccessConfigurations", [])}
            modes.add("provisioned" if "ProvisionedPollerConfig" in properties else "on-demand")
            destinations.add(bool(properties.get("DestinationConfig")))
            if "EventSourceArn" in properties and not properties.get("SourceAccessConfigurations"):
                access_types.add("MSK_IAM")
    assert access_types >= {
        "MSK_IAM",
        "SASL_SCRAM_512_AUTH",
        "SASL_SCRAM_256_AUTH",
        "BASIC_AUTH",
        "CLIENT_CERTIFICATE_TLS_AUTH",
        "SERVER_ROOT_CA_CERTIFICATE",
        "VPC_SUBNET",
        "VPC_SECURITY_GROUP",
    }
    assert modes == {"provisioned", "on-demand"}
    assert destinations == {True, False}


def break_topic(stack: ArchiverStack) -> None:
    """Bypass the config's checks: write a topic name AWS's schema rejects straight into the template."""
    assert stack.event_source is not None
    (mapping,) = stack.event_source.mappings.values()
    cfn = mapping.node.default_child
    assert isinstance(cfn, lambda_.CfnEventSourceMapping)
    cfn.topics = [".x"]


def test_schema_violations_fail_synth_with_the_recommended_flag() -> None:
    """cdk.json sets @aws-cdk/core:validateAgainstDefaultRules: CDK's template validation then fails the synth."""
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*Topics"):
        synthesize(example("self-managed"), tamper=break_topic)


def test_without_the_flag_schema_violations_are_only_warnings() -> None:
    """The control: the same template synthesizes when the flag is off, so the flag is what rejects it."""
    result = synthesize(
        example("self-managed"), tamper=break_topic, context={"@aws-cdk/core:validateAgainstDefaultRules": False}
    )
    (mapping,) = result.resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["Topics"] == [".x"]
    assert any(f.startswith("E3031") for f in findings(result)), "cfn-lint rejects it too"
