"""cdk-nag acknowledgments (cdk-nag v3 uses CDK's ``Validations.of(...).acknowledge``), each with a reason.

IAM5 findings are acknowledged one by one, by their exact finding id: ``AwsSolutions-IAM5[Resource::<flat>]``,
where ``<flat>`` is the resource flattened the way cdk-nag does (``utils/flatten-cfn-reference`` in cdk-nag 3.0.2).
So an acknowledgment covers exactly the wildcard it names, never a new one added later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``AwsSolutions-<rule>`` on ``scope`` and its children, with the reason it is acceptable."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}-{rule}", reason=reason))


def acknowledge_wildcard_resources(scope: IConstruct, resources: Iterable[str], reason: str) -> None:
    """Acknowledge IAM5 for each of ``resources`` that contains a '*', on ``scope`` (e.g. the role)."""
    stack = Stack.of(scope)
    for resource in resources:
        flat = flatten_reference(stack.resolve(resource))
        if "*" in flat:
            acknowledge(scope, f"IAM5[Resource::{flat}]", reason)


def flatten_reference(node: Any) -> str:
    """A CloudFormation value as cdk-nag prints it: Fn::Join joined, Ref as <Id>, Fn::GetAtt as <Id.Attr>."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
