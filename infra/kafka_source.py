"""The Kafka event source mappings (MSK or self-managed), and the permissions and network access they need.

Uses the L2 ``aws_lambda.EventSourceMapping`` rather than ``aws_lambda_event_sources.ManagedKafkaEventSource`` /
``SelfManagedKafkaEventSource``. Measured against aws-cdk-lib 2.275 (its ``lib/kafka.js``), those:

* attach the AWS managed policy AWSLambdaMSKExecutionRole (EC2, Kafka and Logs actions on ``*``) and grant
  nothing for MSK IAM auth (``kafka-cluster:*``), so least privilege is impossible with them;
* only support SASL/SCRAM-512 for MSK secrets, and refuse self-managed brokers reached over the internet without a
  secret (a LocalStack / dev setup);
* send ``VPC_SUBNET`` / ``VPC_SECURITY_GROUP`` URIs as bare ids, where the Lambda API documents ``subnet:<id>`` and
  ``security_group:<id>``;
* grant the on-failure destination broadly (``S3OnFailureDestination`` grants read/write on the whole bucket).

So this construct writes each statement itself, scoped to the cluster, its topics and its consumer groups.
"""

from __future__ import annotations

import hashlib
import re

import jsii
from aws_cdk import Annotations, Aws, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import EventSourceConfig, MskSource, SelfManagedSource
from infra.nag import acknowledge, acknowledge_wildcard_resources

_STARTING_POSITIONS = {
    "TRIM_HORIZON": lambda_.StartingPosition.TRIM_HORIZON,
    "LATEST": lambda_.StartingPosition.LATEST,
    "AT_TIMESTAMP": lambda_.StartingPosition.AT_TIMESTAMP,
}
_SELF_MANAGED_AUTH = {
    "sasl-scram-256": lambda_.SourceAccessConfigurationType.SASL_SCRAM_256_AUTH,
    "sasl-scram-512": lambda_.SourceAccessConfigurationType.SASL_SCRAM_512_AUTH,
    "plain": lambda_.SourceAccessConfigurationType.BASIC_AUTH,  # SASL/PLAIN is BASIC_AUTH in the Lambda API
    "mtls": lambda_.SourceAccessConfigurationType.CLIENT_CERTIFICATE_TLS_AUTH,
}
_METRIC_TYPES = {
    "EventCount": lambda_.MetricType.EVENT_COUNT,
    "ErrorCount": lambda_.MetricType.ERROR_COUNT,
    "KafkaMetrics": lambda_.MetricType.KAFKA_METRICS,
}
_LOG_LEVELS = {
    "WARN": lambda_.EventSourceMappingLogLevel.WARN,
    "INFO": lambda_.EventSourceMappingLogLevel.INFO,
    "DEBUG": lambda_.EventSourceMappingLogLevel.DEBUG,
}
# MSK's broker ports for clients inside the VPC, per auth (MSK developer guide, "Port information").
_MSK_PORTS = {"iam": 9098, "sasl-scram-512": 9096}


@jsii.implements(lambda_.IEventSourceDlq)
class OnFailureDestination:
    """An on-failure destination by ARN that grants nothing itself: the stack grants the exact actions."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    def bind(
        self, _target: lambda_.IEventSourceMapping, _target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.arn)


class KafkaEventSource(Construct):
    """One event source mapping per topic, from MSK or a self-managed cluster, plus what the mappings need.

    The mappings poll with the function's execution role, so the role gets: read access scoped to the cluster,
    topics and groups (MSK IAM auth), the secrets (SASL/mTLS), and the ENI actions for reaching brokers in a VPC.

    Attributes: ``mappings`` (topic -> EventSourceMapping).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        role: iam.Role,
        source: MskSource | SelfManagedSource,
        config: EventSourceConfig,
        on_failure_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._role = role
        if isinstance(source, MskSource):
            access = self._msk_access(source, config)
            event_source_arn, bootstrap_servers = source.cluster_arn, None
        else:
            access = self._self_managed_access(source)
            event_source_arn, bootstrap_servers = None, list(source.bootstrap_servers)

        pollers = config.provisioned_pollers
        self.mappings: dict[str, lambda_.EventSourceMapping] = {}
        for topic in config.topics:
            group = config.consumer_group_for(topic)
            mapping = lambda_.EventSourceMapping(
                self,
                mapping_id(topic, group),
                target=function,
                event_source_arn=event_source_arn,
                kafka_bootstrap_servers=bootstrap_servers,
                kafka_topic=topic,
                kafka_consumer_group_id=group,
                starting_position=_STARTING_POSITIONS[config.starting_position],
                starting_position_timestamp=config.starting_position_timestamp,
                batch_size=config.batch_size,
                max_batching_window=(
                    Duration.seconds(config.batching_window_seconds)
                    if config.batching_window_seconds is not None
                    else None
                ),
                enabled=config.enabled,
                source_access_configurations=access or None,
                on_failure=OnFailureDestination(on_failure_arn) if on_failure_arn else None,
                provisioned_poller_config=(
                    lambda_.ProvisionedPollerConfig(minimum_pollers=pollers.minimum, maximum_pollers=pollers.maximum)
                    if pollers
                    else None
                ),
                retry_attempts=config.retry_attempts,
                bisect_batch_on_error=config.bisect_batch_on_error or None,
                max_record_age=(
                    Duration.seconds(config.max_record_age_seconds)
                    if config.max_record_age_seconds not in (None, -1)
                    else None
                ),
                # The mapping's own metrics (per EventSourceMappingUUID) and system logs (into the function's log
                # group, one stream per mapping): provisioned mode only, validated by parse_config.
                metrics_config=(
                    lambda_.MetricsConfig(metrics=[_METRIC_TYPES[m] for m in config.metrics])
                    if config.metrics
                    else None
                ),
                log_level=(_LOG_LEVELS[config.system_log_level] if config.system_log_level != "off" else None),
            )
            if config.max_record_age_seconds == -1:
                # Duration cannot express "infinite": set AWS's -1 directly.
                cfn = mapping.node.default_child
                assert isinstance(cfn, lambda_.CfnEventSourceMapping)
                cfn.maximum_record_age_in_seconds = -1
            # Lambda checks the execution role's permissions when it creates the mapping.
            mapping.node.add_dependency(role)
            self.mappings[topic] = mapping

    # ----------------------------------------------------------------------------------------------- MSK

    def _msk_access(self, source: MskSource, config: EventSourceConfig) -> list[lambda_.SourceAccessConfiguration]:
        partition, region, account, name, uuid = source.cluster_parts
        prefix = f"arn:{partition}:kafka:{region}:{account}"
        self._allow("DescribeCluster", ["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"], [source.cluster_arn])
        access: list[lambda_.SourceAccessConfiguration] = []
        if source.auth == "iam":
            self._allow(
                "ConnectToCluster",
                ["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
                [source.cluster_arn],
            )
            self._allow(
                "ReadTopics",
                ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                [f"{prefix}:topic/{name}/{uuid}/{topic}" for topic in config.topics],
            )
            self._allow(
                "UseConsumerGroups",
                ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                [f"{prefix}:group/{name}/{uuid}/{config.consumer_group_for(topic)}" for topic in config.topics],
            )
        else:
            assert source.secret_arn is not None, "validated by parse_config"
            access.append(_access(lambda_.SourceAccessConfigurationType.SASL_SCRAM_512_AUTH, source.secret_arn))
            self._allow_secrets([source.secret_arn], source.secret_kms_key_arn)
        # Lambda puts network interfaces into the cluster's subnets (of the cluster's account and region).
        self._allow_network_interfaces(
            partition=partition, region=region, account=account, subnet_ids=None, security_group_ids=None
        )
        if source.cluster_security_group_id:
            # The mapping's interfaces use the cluster's own security group: it must admit itself on the port.
            port = _MSK_PORTS[source.auth]
            ec2.CfnSecurityGroupIngress(
                self,
                "ClusterSelfIngress",
                group_id=source.cluster_security_group_id,
                source_security_group_id=source.cluster_security_group_id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"Lambda event source mapping of {Stack.of(self).stack_name} to the MSK brokers",
            )
        return access

    # ----------------------------------------------------------------------------------------------- self-managed

    def _self_managed_access(self, source: SelfManagedSource) -> list[lambda_.SourceAccessConfiguration]:
        access: list[lambda_.SourceAccessConfiguration] = []
        secrets = []
        if source.auth != "none":
            assert source.secret_arn is not None, "validated by parse_config"
            access.append(_access(_SELF_MANAGED_AUTH[source.auth], source.secret_arn))
            secrets.append(source.secret_arn)
        if source.root_ca_secret_arn:
            access.append(
                _access(lambda_.SourceAccessConfigurationType.SERVER_ROOT_CA_CERTIFICATE, source.root_ca_secret_arn)
            )
            secrets.append(source.root_ca_secret_arn)
        if secrets:
            self._allow_secrets(secrets, source.secret_kms_key_arn)
        if source.vpc is not None:
            access += [
                _access(lambda_.SourceAccessConfigurationType.VPC_SUBNET, f"subnet:{subnet}")
                for subnet in source.vpc.subnet_ids
            ]
            access += [
                _access(lambda_.SourceAccessConfigurationType.VPC_SECURITY_GROUP, f"security_group:{group}")
                for group in source.vpc.security_group_ids
            ]
            self._allow_network_interfaces(
                partition=Aws.PARTITION,
                region=Aws.REGION,
                account=Aws.ACCOUNT_ID,
                subnet_ids=source.vpc.subnet_ids,
                security_group_ids=source.vpc.security_group_ids,
            )
        elif source.auth == "none":
            Annotations.of(self).add_warning_v2(
                "archiver:unauthenticatedInternetKafka",
                "selfManaged has no vpc and auth 'none': AWS Lambda reaches brokers over the internet only with "
                "authentication. Fine for LocalStack (withEventSource=false); set auth and secretArn for AWS.",
            )
        return access

    # ----------------------------------------------------------------------------------------------- statements

    def _allow(self, sid: str, actions: list[str], resources: list[str]) -> None:
        self._role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def _allow_secrets(self, secret_arns: list[str], kms_key_arn: str | None) -> None:
        self._allow("ReadKafkaSecrets", ["secretsmanager:GetSecretValue"], secret_arns)
        if kms_key_arn:
            self._role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="DecryptKafkaSecrets",
                    actions=["kms:Decrypt"],
                    resources=[kms_key_arn],
                    conditions={"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
                )
            )

    def _allow_network_interfaces(
        self,
        *,
        partition: str,
        region: str,
        account: str,
        subnet_ids: tuple[str, ...] | None,
        security_group_ids: tuple[str, ...] | None,
    ) -> None:
        ec2_arn = f"arn:{partition}:ec2:{region}:{account}"
        subnets = [f"{ec2_arn}:subnet/{s}" for s in subnet_ids] if subnet_ids else [f"{ec2_arn}:subnet/*"]
        groups = (
            [f"{ec2_arn}:security-group/{g}" for g in security_group_ids]
            if security_group_ids
            else [f"{ec2_arn}:security-group/*"]
        )
        interfaces = [f"{ec2_arn}:network-interface/*", *subnets, *groups]
        self._allow("ManageMappingInterfaces", ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"], interfaces)
        # EC2's Describe* actions support no resource-level permissions: AWS requires Resource "*" for them.
        self._allow(
            "DescribeMappingNetwork",
            [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            ["*"],
        )
        acknowledge_wildcard_resources(
            self._role,
            interfaces,
            "Lambda names the network interfaces it creates for the mapping, so their ARNs end in '*'; they are "
            "scoped to the account and region, and to the configured subnets and security groups where known.",
        )
        acknowledge(
            self._role,
            "IAM5[Resource::*]",
            "ec2:DescribeNetworkInterfaces/Vpcs/Subnets/SecurityGroups support no resource-level permissions: AWS "
            "requires Resource '*' for them.",
        )


def _access(kind: lambda_.SourceAccessConfigurationType, uri: str) -> lambda_.SourceAccessConfiguration:
    return lambda_.SourceAccessConfiguration(type=kind, uri=uri)


def mapping_id(topic: str, consumer_group: str) -> str:
    """The construct id (and so the logical id) of a topic's mapping: it changes with the consumer group.

    AWS cannot change a mapping's consumer group (Lambda developer guide, "Customizable consumer group ID": "After
    creating a Kafka event source mapping with the consumer group ID specified, you cannot update this value"), yet
    the CloudFormation schema does not mark ConsumerGroupId create-only. With the group in the logical id, a new
    group is a new resource (create the new mapping, delete the old) instead of an in-place update AWS refuses.
    """
    readable = re.sub(r"[^A-Za-z0-9]", "", topic)[:40]
    digest = hashlib.sha256(f"{topic}\n{consumer_group}".encode()).hexdigest()[:8]
    return f"Topic{readable}{digest}"
