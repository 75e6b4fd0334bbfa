"""The archiver Lambda: python3.13, locally bundled for its architecture, with its own role and log group."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import AssetHashType, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from archiver.settings import Settings
from infra.bundling import bundle_function
from infra.config import LOG_RETENTION_DAYS, FunctionConfig
from infra.nag import acknowledge

HANDLER = "handler.lambda_handler"
RUNTIME = lambda_.Runtime.PYTHON_3_13
METRICS_NAMESPACE = "KafkaS3Archiver"
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
# CDK's RetentionDays members, in the same order as config.LOG_RETENTION_DAYS (their values are names, not days).
_RETENTION = dict(
    zip(LOG_RETENTION_DAYS, [d for d in logs.RetentionDays if d is not logs.RetentionDays.INFINITE], strict=True)
)


def log_retention(days: int) -> logs.RetentionDays:
    """CDK's RetentionDays for one of config.LOG_RETENTION_DAYS."""
    return _RETENTION[days]


class ArchiverFunction(Construct):
    """The function, its execution role (no managed policies: every statement is written out) and log group.

    ``settings`` is the function's own ``Settings`` type; its ``to_env()`` is the environment, so what infra
    deploys is exactly what the function validates at cold start. ``asset_dir`` overrides the local bundle (tests).

    Attributes: ``function``, ``role``, ``log_group``, ``asset_dir`` (the bundle deployed).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FunctionConfig,
        settings: Settings,
        service_name: str,
        removal_policy: RemovalPolicy,
        asset_dir: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        bundle = asset_dir or bundle_function(architecture=config.architecture)
        self.asset_dir = bundle
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=_RETENTION[config.log_retention_days],
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Execution role of the Kafka-to-S3 archiver: least privilege, written out per statement",
        )
        # The function writes only to its own log group (the AWS managed basic-execution policy allows any group).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        environment = {
            **settings.to_env(),
            "POWERTOOLS_SERVICE_NAME": service_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        if not config.tracing:
            environment["POWERTOOLS_TRACE_DISABLED"] = "true"
        self.function = lambda_.Function(
            self,
            "Function",
            description="Archives Kafka records to S3 as Avro container files",
            runtime=RUNTIME,
            architecture=_ARCHITECTURES[config.architecture],
            handler=HANDLER,
            # The bundle directory is named after the hash of its requirements and code: reuse it as the asset
            # hash instead of letting CDK fingerprint ~30 MB of wheels on every synth.
            code=lambda_.Code.from_asset(
                str(bundle), asset_hash_type=AssetHashType.CUSTOM, asset_hash=f"{bundle.name}-{config.architecture}"
            ),
            memory_size=config.memory_mib,
            timeout=Duration.seconds(config.timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            reserved_concurrent_executions=config.reserved_concurrency,
        )
        acknowledge(
            self.function,
            "L1",
            "python3.13 is the runtime the function, its wheels and its tests are built for; a runtime upgrade is a "
            "deliberate change to functions/archiver and its bundle, not a drift fix.",
        )
        if config.tracing:
            acknowledge(
                self.role,
                "IAM5[Resource::*]",
                "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions: AWS requires "
                "Resource '*' for them (added by CDK for Tracing.ACTIVE).",
            )
