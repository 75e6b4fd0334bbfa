"""The one stack: it wires the constructs together and grants; each construct owns its resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from constructs import Construct

from archiver.settings import DEAD_LETTER_PREFIX
from infra.catalog import ArchiveCatalog, TopicTable
from infra.config import ON_FAILURE_PREFIX, AppConfig
from infra.dead_letter import DeadLetterQueue
from infra.function import METRICS_NAMESPACE, ArchiverFunction, log_retention
from infra.kafka_source import KafkaEventSource
from infra.maintenance import ArchiveMaintenance
from infra.monitoring import Monitoring, WatchedMappings
from infra.registries import grant_registry_reads
from infra.storage import ArchiveBucket

# CfnOutput ids: the local tooling reads these (docs/deploy.md lists them).
OUTPUT_BUCKET = "ArchiveBucketName"
OUTPUT_QUEUE_URL = "DeadLetterQueueUrl"
OUTPUT_QUEUE_ARN = "DeadLetterQueueArn"
OUTPUT_FUNCTION = "FunctionName"
OUTPUT_DASHBOARD = "DashboardName"
OUTPUT_ALARM_TOPIC = "AlarmTopicArn"
OUTPUT_COMPACTION_PLANNER = "CompactionPlannerFunctionName"
OUTPUT_COMPACTION_QUEUE = "CompactionQueueUrl"
OUTPUT_AUDIT = "AuditFunctionName"
OUTPUT_ON_FAILURE_QUEUE_URL = "OnFailureQueueUrl"
OUTPUT_ON_FAILURE_QUEUE_ARN = "OnFailureQueueArn"


class ArchiverStack(Stack):
    """Bucket + dead-letter and on-failure queues + function + Kafka mapping(s) + dashboard and alarms, and the Glue
    catalog of the typed topics when ``config.catalog`` is set.

    ``with_event_source=False`` leaves out only the event source mappings (and the grants only they use), e.g. for
    LocalStack, which accepts no Kafka mapping; every other resource is the same.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        with_event_source: bool = True,
        asset_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.DESTROY if config.bucket.removal_policy == "destroy" else RemovalPolicy.RETAIN
        service_name = self.stack_name

        self.archive = ArchiveBucket(self, "Archive", config=config.bucket, archive_prefix=config.archive.prefix)
        self.dead_letters = DeadLetterQueue(self, "DeadLetters", key=self.archive.key, removal_policy=removal)
        # Batches the mapping gives up on get their own queue: they are metadata only, the records are not archived.
        self.on_failure: DeadLetterQueue | None = None
        if config.event_source.on_failure == "queue":
            self.on_failure = DeadLetterQueue(
                self,
                "OnFailure",
                key=self.archive.key,
                removal_policy=removal,
                purpose="batches the event source mapping gave up on, to re-archive from Kafka",
            )
        # The function's own Settings type validates the environment here, exactly as the Lambda will.
        settings = config.archive.settings(
            bucket_name=self.archive.bucket.bucket_name, dead_letter_queue_url=self.dead_letters.queue.queue_url
        )
        self.archiver = ArchiverFunction(
            self,
            "Archiver",
            config=config.function,
            settings=settings,
            service_name=service_name,
            removal_policy=removal,
            asset_dir=asset_dir,
        )
        role = self.archiver.role
        # Archive objects carry the configured tags; dead-letter payloads never do.
        self.archive.grant_put(
            role,
            prefixes=[config.archive.prefix, DEAD_LETTER_PREFIX],
            tagged_prefixes=[config.archive.prefix] if settings.tags else [],
        )
        self.dead_letters.grant_send(role)
        # Typed topics: registry auth secrets and Glue registries (nothing for json topics or raw-only configs).
        grant_registry_reads(
            role, topics=settings.typed_topics, secret_kms_key_arn=config.archive.registry_auth_secret_kms_key_arn
        )

        self.catalog: ArchiveCatalog | None = None
        if config.catalog is not None:
            # A table for every archived topic: typed topics with their values' schema, raw ones with the envelope's.
            tables = []
            for topic in config.event_source.topics:
                topic_format = settings.typed_topics.get(topic)
                schema = None if topic_format is None else topic_format.archive_value_schema
                assert topic_format is None or schema is not None, "parse_config requires a schema with catalog"
                tables.append(TopicTable(topic=topic, value_schema=schema))
            self.catalog = ArchiveCatalog(
                self,
                "Catalog",
                database_name=config.catalog.database_name,
                bucket=self.archive.bucket,
                archive_prefix=config.archive.prefix,
                segments=settings.segments,
                kafka_partitions=config.catalog.kafka_partitions,
                topics=tables,
            )

        self.event_source: KafkaEventSource | None = None
        if with_event_source:
            on_failure = config.event_source.on_failure
            on_failure_arn = None
            if self.on_failure is not None:
                on_failure_arn = self.on_failure.queue.queue_arn
                self.on_failure.grant_send(role)  # the mapping sends with the function's execution role
            elif on_failure == "bucket":
                on_failure_arn = self.archive.bucket.bucket_arn
                self.archive.grant_put(role, prefixes=[ON_FAILURE_PREFIX])
                # Lambda's S3 on-failure destination also needs s3:ListBucket (Lambda developer guide).
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid="ListForOnFailure", actions=["s3:ListBucket"], resources=[self.archive.bucket.bucket_arn]
                    )
                )
            source = config.msk if config.source_kind == "msk" else config.self_managed
            assert source is not None, "parse_config guarantees the section for source_kind"
            self.event_source = KafkaEventSource(
                self,
                "Source",
                function=self.archiver.function,
                role=role,
                source=source,
                config=config.event_source,
                on_failure_arn=on_failure_arn,
            )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config.monitoring,
            function=self.archiver.function,
            timeout_seconds=config.function.timeout_seconds,
            dead_letter_queue=self.dead_letters.queue,
            on_failure_queue=self.on_failure.queue if self.on_failure else None,
            mappings=WatchedMappings(
                mappings=self.event_source.mappings if self.event_source else {},
                enabled=config.event_source.enabled,
                metrics=config.event_source.metrics,
                on_failure=config.event_source.on_failure,
            ),
            service_name=service_name,
            dashboard_name=self.stack_name,
        )

        self.maintenance: ArchiveMaintenance | None = None
        maintenance = config.maintenance
        if maintenance.compaction.enabled or maintenance.audit.enabled:
            self.maintenance = ArchiveMaintenance(
                self,
                "Maintenance",
                config=maintenance,
                bucket=self.archive.bucket,
                bucket_key_arn=self.archive.put_key_arn,
                archive_prefix=config.archive.prefix,
                topics=config.event_source.topics,
                architecture=config.function.architecture,
                service_name=service_name,
                metrics_namespace=METRICS_NAMESPACE,
                removal_policy=removal,
                log_retention=log_retention(config.function.log_retention_days),
            )
            for title, widgets, alarms in self.maintenance.rows:
                self.monitoring.watch(title=title, widgets=widgets, alarms=alarms)

        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

        CfnOutput(self, OUTPUT_BUCKET, value=self.archive.bucket.bucket_name, description="Archive bucket")
        CfnOutput(self, OUTPUT_QUEUE_URL, value=self.dead_letters.queue.queue_url, description="Dead-letter queue")
        CfnOutput(self, OUTPUT_QUEUE_ARN, value=self.dead_letters.queue.queue_arn, description="Dead-letter queue")
        CfnOutput(self, OUTPUT_FUNCTION, value=self.archiver.function.function_name, description="Archiver function")
        CfnOutput(self, OUTPUT_DASHBOARD, value=self.stack_name, description="CloudWatch dashboard")
        if self.on_failure is not None:
            queue = self.on_failure.queue
            CfnOutput(self, OUTPUT_ON_FAILURE_QUEUE_URL, value=queue.queue_url, description="Given-up batches")
            CfnOutput(self, OUTPUT_ON_FAILURE_QUEUE_ARN, value=queue.queue_arn, description="Given-up batches")
        if self.monitoring.topic is not None:
            CfnOutput(self, OUTPUT_ALARM_TOPIC, value=self.monitoring.topic.topic_arn, description="Alarm topic")
        if self.maintenance is not None and self.maintenance.planner is not None:
            planner, work = self.maintenance.planner, self.maintenance.work_queue
            assert work is not None
            CfnOutput(self, OUTPUT_COMPACTION_PLANNER, value=planner.function_name, description="Compaction planner")
            CfnOutput(self, OUTPUT_COMPACTION_QUEUE, value=work.queue_url, description="Compaction work queue")
        if self.maintenance is not None and self.maintenance.auditor is not None:
            CfnOutput(self, OUTPUT_AUDIT, value=self.maintenance.auditor.function_name, description="Archive audit")
