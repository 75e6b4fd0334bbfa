"""What the function's role needs to decode typed topics: the registry auth secrets and the Glue registries.

Written out per statement and scoped to the configured ARNs, like every other grant of the role:

* ``avro-confluent`` with ``registryAuthSecretArn``: ``secretsmanager:GetSecretValue`` on exactly those secrets,
  and ``kms:Decrypt`` (via Secrets Manager only) on ``archive.registryAuthSecretKmsKeyArn`` when one is configured.
* ``avro-glue``: ``glue:GetSchemaVersion`` on each registry and the schemas in it
  (``arn:<partition>:glue:<region>:<account>:schema/<registry>/*``), the same scope aws-cdk-lib's own
  ``GlueSchemaRegistry`` grants an event source mapping. The function calls nothing else in Glue.

A ``json`` topic, or an ``avro-confluent`` registry without auth, needs no permission at all.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from archiver.values.config import ValueFormats
from infra.nag import acknowledge_wildcard_resources

SID_SECRETS = "ReadRegistryAuthSecrets"
SID_SECRETS_KEY = "DecryptRegistryAuthSecrets"
SID_GLUE = "ReadGlueSchemaVersions"


def glue_schema_resources(registry_arn: str) -> list[str]:
    """A Glue registry's ARN and the wildcard ARN of the schemas in it (same partition, region and account)."""
    prefix, _, name = registry_arn.partition(":registry/")
    return [registry_arn, f"{prefix}:schema/{name}/*"]


def grant_registry_reads(role: iam.Role, *, topics: ValueFormats, secret_kms_key_arn: str | None) -> None:
    """Add the statements the typed ``topics`` need to ``role`` (none if no topic uses a secret or Glue)."""
    secrets = sorted({f.registry_auth_secret_arn for f in topics.values() if f.registry_auth_secret_arn})
    if secrets:
        role.add_to_principal_policy(
            iam.PolicyStatement(sid=SID_SECRETS, actions=["secretsmanager:GetSecretValue"], resources=secrets)
        )
        if secret_kms_key_arn:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=SID_SECRETS_KEY,
                    actions=["kms:Decrypt"],
                    resources=[secret_kms_key_arn],
                    conditions={"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
                )
            )
    registries = sorted({f.registry_arn for f in topics.values() if f.format == "avro-glue" and f.registry_arn})
    if registries:
        resources = [resource for arn in registries for resource in glue_schema_resources(arn)]
        role.add_to_principal_policy(
            iam.PolicyStatement(sid=SID_GLUE, actions=["glue:GetSchemaVersion"], resources=resources)
        )
        acknowledge_wildcard_resources(
            role,
            resources,
            "The function looks writer schemas up by the schema version id in each record's header, so it cannot "
            "know the schema names in advance; the wildcard covers only the schemas of the configured Glue "
            "registry (schema/<registry>/*), in the registry's own account and region.",
        )
