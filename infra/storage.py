"""The archive bucket: created by the stack (default) or an existing bucket by name."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from archiver.settings import DEAD_LETTER_PREFIX
from infra.config import ON_FAILURE_PREFIX, BucketConfig
from infra.nag import acknowledge, acknowledge_wildcard_resources

_STORAGE_CLASSES = {
    "STANDARD_IA": s3.StorageClass.INFREQUENT_ACCESS,
    "ONEZONE_IA": s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS,
    "INTELLIGENT_TIERING": s3.StorageClass.INTELLIGENT_TIERING,
    "GLACIER_IR": s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
    "GLACIER": s3.StorageClass.GLACIER,
    "DEEP_ARCHIVE": s3.StorageClass.DEEP_ARCHIVE,
}


class ArchiveBucket(Construct):
    """The bucket the archive (and large dead-letter payloads) go to, and the KMS key that encrypts it, if any.

    Attributes: ``bucket``; ``key`` (the stack's KMS key, or None for SSE-S3); ``put_key_arn`` (the key a put must
    be allowed to use: the stack's key, an existing bucket's configured key, or None).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: BucketConfig, archive_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.key: kms.IKey | None = None
        self.put_key_arn: str | None = None
        if config.existing_bucket_name is not None:
            self.bucket: s3.IBucket = s3.Bucket.from_bucket_name(self, "Existing", config.existing_bucket_name)
            self.put_key_arn = config.existing_bucket_kms_key_arn
            return

        removal = RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN
        if config.encryption == "kms":
            self.key = kms.Key(
                self,
                "Key",
                description=f"Encrypts the Kafka archive and dead-letter queue of {Stack.of(self).stack_name}",
                enable_key_rotation=True,
                removal_policy=removal,
            )
            self.put_key_arn = self.key.key_arn

        rules = _lifecycle_rules(config, archive_prefix=archive_prefix)
        access_logs = (
            s3.Bucket.from_bucket_name(self, "AccessLogs", config.server_access_logs_bucket_name)
            if config.server_access_logs_bucket_name
            else None
        )
        bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=self.key is not None,  # one data key per bucket, not per object: far fewer KMS calls
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=config.versioned,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=rules,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{Stack.of(self).stack_name}/" if access_logs else None,
            removal_policy=removal,
        )
        self.bucket = bucket
        if access_logs is None:
            acknowledge(
                bucket,
                "S1",
                "Server access logging is opt-in (bucket.serverAccessLogsBucketName): only the archiver's own role "
                "writes here, and CloudTrail data events are the audit trail of choice for object-level access.",
            )

    def grant_put(self, role: iam.Role, *, prefixes: list[str], tagged_prefixes: Sequence[str] = ()) -> None:
        """Allow PutObject under ``prefixes`` only (and the KMS data key a put needs). Under ``tagged_prefixes`` (some
        of ``prefixes``) PutObject may set tags, which S3 authorizes as s3:PutObjectTagging too (S3 API reference,
        PutObject, "x-amz-tagging")."""
        arns = [self.bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=arns))
        if tagged_prefixes:
            tagged = [self.bucket.arn_for_objects(f"{prefix}*") for prefix in tagged_prefixes]
            role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObjectTagging"], resources=tagged))
        acknowledge_wildcard_resources(
            role,
            arns,
            f"PutObject is scoped to the key prefixes {', '.join(repr(p) for p in prefixes)}; object keys are only "
            "known at run time, so each prefix ends in '*'.",
        )
        if self.put_key_arn is not None:
            # SSE-KMS puts need a data key; single-part PutObject needs no kms:Decrypt.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey"],
                    resources=[self.put_key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.amazonaws.com"}},
                )
            )


def _lifecycle_rules(config: BucketConfig, *, archive_prefix: str) -> list[s3.LifecycleRule]:
    lifecycle = config.lifecycle
    rules = [s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(1))]
    if lifecycle.transitions or lifecycle.expiration_days is not None:
        rules.append(
            s3.LifecycleRule(
                id="Archive",
                prefix=archive_prefix or None,
                transitions=[
                    s3.Transition(
                        storage_class=_STORAGE_CLASSES[transition.storage_class],
                        transition_after=Duration.days(transition.after_days),
                    )
                    for transition in lifecycle.transitions
                ],
                expiration=Duration.days(lifecycle.expiration_days) if lifecycle.expiration_days else None,
            )
        )
    if lifecycle.dead_letter_expiration_days is not None:
        for rule_id, prefix in (("DeadLetter", DEAD_LETTER_PREFIX), ("OnFailure", ON_FAILURE_PREFIX)):
            rules.append(
                s3.LifecycleRule(
                    id=rule_id, prefix=prefix, expiration=Duration.days(lifecycle.dead_letter_expiration_days)
                )
            )
    if config.versioned and lifecycle.noncurrent_version_expiration_days is not None:
        rules.append(
            s3.LifecycleRule(
                id="NoncurrentVersions",
                noncurrent_version_expiration=Duration.days(lifecycle.noncurrent_version_expiration_days),
            )
        )
    return rules
