"""The archive's upkeep, deployed: scheduled compaction (planner -> SQS work queue -> workers) and the scheduled
archive audit, with their alarms and dashboard widgets.

Both run the repository's own engine (``archive_ops.compact``, ``archive_ops.archive_audit``), bundled next to thin
handlers (``functions/maintenance``), so the deployed maintenance and the CLI are one implementation.

* Compaction: an EventBridge rule runs the planner, which lists the archive and queues one message per group with
  work (directory + topic + partition). An SQS event source hands them to worker Lambdas one at a time, with bounded
  concurrency; a group that needs more than one invocation is queued again. Failed messages go to the work queue's
  own dead-letter queue after three tries (alarmed). Every merge is crash-safe and safe against concurrent runs and
  the archiver writing meanwhile.
* Audit: an EventBridge rule runs the audit Lambda, which keeps its manifests under ``AUDIT_STATE_PREFIX`` and
  publishes per-topic metrics; alarms page on any gap or conflict, and on the audit not running.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CfnParameter, Duration, NestedStack, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from archive_ops.maintenance import SETTLE_SLACK_SECONDS, MaintenanceSettings
from archiver.settings import DEAD_LETTER_PREFIX
from infra import FUNCTION_DIR, PROJECT_ROOT
from infra.bundling import bundle_function
from infra.config import Architecture, MaintenanceConfig
from infra.monitoring import RUNBOOK
from infra.nag import acknowledge, acknowledge_wildcard_resources

MAINTENANCE_DIR = PROJECT_ROOT / "functions" / "maintenance"
RUNTIME = lambda_.Runtime.PYTHON_3_13
WORKER_TIMEOUT = Duration.minutes(15)  # Lambda's maximum; a worker stops a minute early and requeues the rest
PLANNER_TIMEOUT = Duration.minutes(5)
AUDIT_TIMEOUT = Duration.minutes(15)
# AWS: an SQS event source's queue needs a visibility timeout of at least six times the function timeout.
WORK_VISIBILITY = Duration.minutes(90)
WORK_MAX_RECEIVES = 3
PERIOD = Duration.minutes(5)
_PROBLEMS = ("CompactionConflicts", "CompactionFailures")
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


class ArchiveMaintenance(NestedStack):
    """Compaction and audit of one archive bucket/prefix, as a nested stack of the archiver's stack: one
    ``cdk deploy`` deploys both, and the archiver's own template stays as it is whether maintenance is on or off.

    Attributes: ``planner``, ``worker``, ``work_queue``, ``work_dead_letters`` (None when compaction is off);
    ``auditor`` (None when the audit is off); ``alarms`` (name -> Alarm); ``rows`` (dashboard rows: title,
    widgets, and the alarms they show); ``settings`` (the functions' MaintenanceSettings).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MaintenanceConfig,
        bucket: s3.IBucket,
        bucket_key_arn: str | None,
        archive_prefix: str,
        topics: Sequence[str],
        architecture: Architecture,
        service_name: str,
        metrics_namespace: str,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        asset_dir: Path | None = None,
    ) -> None:
        # The parent's bucket (and key) come in as explicit parameters, so what the roles are granted reads as
        # <ArchiveBucketArn>/<prefix>* in the template and cdk-nag acknowledgments can name it exactly.
        parameters = {"ArchiveBucketName": bucket.bucket_name, "ArchiveBucketArn": bucket.bucket_arn}
        if bucket_key_arn is not None:
            parameters["ArchiveKeyArn"] = bucket_key_arn
        super().__init__(
            scope,
            construct_id,
            description="Compaction and audit of the kafka-s3-archiver archive",
            parameters=parameters,
        )
        values = {name: CfnParameter(self, name, type="String").value_as_string for name in parameters}
        self._bucket = s3.Bucket.from_bucket_attributes(
            self, "Archive", bucket_name=values["ArchiveBucketName"], bucket_arn=values["ArchiveBucketArn"]
        )
        self._bucket_key_arn = values.get("ArchiveKeyArn")
        self._prefix = archive_prefix
        self._architecture = architecture
        self._removal_policy = removal_policy
        self._log_retention = log_retention
        self._service_name = service_name
        self._namespace = metrics_namespace
        bundle = asset_dir or bundle_function(
            architecture=architecture,
            source_dir=MAINTENANCE_DIR,
            requirements=FUNCTION_DIR / "requirements.txt",
            include=[(FUNCTION_DIR / "archiver", "archiver"), (PROJECT_ROOT / "archive_ops", "archive_ops")],
            name="maintenance",
        )
        self.asset_dir = bundle
        self._code = lambda_.Code.from_asset(str(bundle))
        self.alarms: dict[str, cw.Alarm] = {}
        self.rows: list[tuple[str, list[cw.IWidget], list[cw.Alarm]]] = []
        self.planner: lambda_.Function | None = None
        self.worker: lambda_.Function | None = None
        self.work_queue: sqs.Queue | None = None
        self.work_dead_letters: sqs.Queue | None = None
        self.auditor: lambda_.Function | None = None

        compaction = config.compaction
        if compaction.enabled:
            self.work_dead_letters = self._queue("WorkDeadLetters", retention=Duration.days(14))
            self.work_queue = self._queue(
                "WorkQueue",
                retention=Duration.days(4),
                visibility=WORK_VISIBILITY,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=self.work_dead_letters, max_receive_count=WORK_MAX_RECEIVES
                ),
            )
        self.settings = MaintenanceSettings(
            archive_bucket=self._bucket.bucket_name,
            archive_prefix=archive_prefix,
            target_bytes=compaction.target_size_mib * 1024 * 1024,
            min_age_seconds=compaction.min_age_minutes * 60,
            work_queue_url=self.work_queue.queue_url if self.work_queue is not None else None,
            audit_settle_seconds=(compaction.min_age_minutes * 60 + SETTLE_SLACK_SECONDS if compaction.enabled else 0),
        )
        if compaction.enabled:
            self._compaction(config)
        if config.audit.enabled:
            self._audit(config, topics)

    # -- compaction ---------------------------------------------------------------------------------------------

    def _compaction(self, config: MaintenanceConfig) -> None:
        queue, dead_letters = self.work_queue, self.work_dead_letters
        assert queue is not None
        assert dead_letters is not None
        compaction = config.compaction
        self.planner = self._function(
            "Planner",
            handler="compaction_planner.lambda_handler",
            description="Queues the archive groups compaction would change (kafka-s3-archiver)",
            memory_mib=512,
            timeout=PLANNER_TIMEOUT,
        )
        self._allow_list(self.planner, [self._prefix])
        self._allow_send(self.planner, queue)
        self._schedule("CompactionSchedule", "Plans the archive's compaction", compaction.schedule, self.planner)

        self.worker = self._function(
            "Worker",
            handler="compaction_worker.lambda_handler",
            description="Compacts one archive group per message: merges small objects, removes retry duplicates",
            memory_mib=compaction.memory_mib,
            timeout=WORKER_TIMEOUT,
        )
        self._allow_list(self.worker, [self._prefix])
        # A merged object keeps the newest input's tags (archive_ops/compact.py): S3 reports an object's tag count and
        # tags only to callers with s3:GetObjectTagging, and a PutObject with tags needs s3:PutObjectTagging.
        self._allow_objects(
            self.worker,
            ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"],
            [self._prefix],
        )
        self._allow_kms(self.worker, ["kms:Decrypt", "kms:GenerateDataKey"])
        self._allow_send(self.worker, queue)  # a group that needs another invocation is queued again
        self.worker.add_event_source(
            sources.SqsEventSource(queue, batch_size=1, max_concurrency=compaction.max_concurrency)
        )

        self._alarm(
            "CompactionWorkFailed",
            "Compaction work items failed three times and went to the work dead-letter queue: read the worker's logs, "
            "fix, then redrive the queue.",
            dead_letters.metric_approximate_number_of_messages_visible(statistic=cw.Stats.MAXIMUM, period=PERIOD),
        )
        for name, function in (("CompactionPlannerErrors", self.planner), ("CompactionWorkerErrors", self.worker)):
            self._alarm(
                name,
                f"The {name.removesuffix('Errors').removeprefix('Compaction').lower()} failed: compaction does not "
                "progress until it runs again cleanly.",
                function.metric_errors(statistic=cw.Stats.SUM, period=PERIOD),
            )
        self._alarm(
            "CompactionConflicts",
            "Compaction found copies of one Kafka record that differ: both objects are kept. Investigate with "
            "`kafka-s3-archiver verify`.",
            self._own_metric("CompactionConflicts", cw.Stats.SUM),
        )
        alarms = [alarm for name, alarm in self.alarms.items() if name.startswith("Compaction")]
        self.rows.append(
            (
                "Compaction (scheduled: merges small objects, removes retry duplicates)",
                [
                    cw.GraphWidget(
                        title="Compaction: merges, objects compacted, duplicates removed",
                        left=[
                            self._own_metric(name, cw.Stats.SUM) for name in ("CompactionMerges", "ObjectsCompacted")
                        ],
                        right=[self._own_metric("DuplicatesRemoved", cw.Stats.SUM)],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Compaction: conflicts and failures",
                        left=[
                            self._own_metric(name, cw.Stats.SUM)
                            for name in ("CompactionConflicts", "CompactionFailures")
                        ],
                        left_annotations=[cw.HorizontalAnnotation(value=1, label="alarm")],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Compaction work queue: waiting, failed",
                        left=[queue.metric_approximate_number_of_messages_visible(period=PERIOD)],
                        right=[dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD)],
                        width=8,
                    ),
                ],
                alarms,
            )
        )

    # -- audit --------------------------------------------------------------------------------------------------

    def _audit(self, config: MaintenanceConfig, topics: Sequence[str]) -> None:
        audit = config.audit
        self.auditor = self._function(
            "Audit",
            handler="audit.lambda_handler",
            description="Audits the archive from S3: gaps, duplicates, conflicts, freshness (kafka-s3-archiver)",
            memory_mib=audit.memory_mib,
            timeout=AUDIT_TIMEOUT,
        )
        state = self.settings.audit_state_prefix
        self._allow_list(self.auditor, [self._prefix, DEAD_LETTER_PREFIX, state])
        self._allow_objects(self.auditor, ["s3:GetObject"], [self._prefix, DEAD_LETTER_PREFIX])
        self._allow_objects(self.auditor, ["s3:GetObject", "s3:PutObject"], [state])
        self._allow_kms(self.auditor, ["kms:Decrypt", "kms:GenerateDataKey"])
        self._schedule("AuditSchedule", "Audits the archive", audit.schedule, self.auditor)
        runs = self._own_metric("AuditRuns", cw.Stats.SUM, period=Duration.hours(3))
        self._alarm(
            "AuditNotRunning",
            "The archive audit has not completed a run in 3 hours: gaps would go unnoticed.",
            runs,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cw.TreatMissingData.BREACHING,
        )
        self._alarm(
            "AuditErrors",
            "The archive audit failed.",
            self.auditor.metric_errors(statistic=cw.Stats.SUM, period=PERIOD),
        )
        gap_metrics, conflict_metrics, freshness_metrics = [], [], []
        for topic in topics:
            gaps = self._topic_metric("GapOffsets", topic)
            conflicts = self._topic_metric("ConflictOffsets", topic)
            freshness = self._topic_metric("FreshnessSeconds", topic, cw.Stats.MAXIMUM)
            gap_metrics.append(gaps)
            conflict_metrics.append(conflicts)
            freshness_metrics.append(freshness)
            self._alarm(
                f"ArchiveGaps{_construct_safe(topic)}",
                f"Offsets of topic {topic} are neither archived nor dead-lettered: re-archive them from Kafka with "
                "`kafka-s3-archiver backfill` before retention deletes them.",
                gaps,
            )
            self._alarm(
                f"ArchiveConflicts{_construct_safe(topic)}",
                f"Topic {topic} has records archived twice with different contents.",
                conflicts,
                missing=cw.TreatMissingData.IGNORE,
            )
            if audit.freshness_alarm_minutes is not None:
                self._alarm(
                    f"ArchiveStale{_construct_safe(topic)}",
                    f"The newest archived record of topic {topic} is over {audit.freshness_alarm_minutes} minutes old.",
                    freshness,
                    threshold=audit.freshness_alarm_minutes * 60,
                    comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    missing=cw.TreatMissingData.IGNORE,
                )
        alarms = [alarm for name, alarm in self.alarms.items() if name.startswith(("Audit", "Archive"))]
        self.rows.append(
            (
                "Archive audit (scheduled, from S3: gaps, duplicates, conflicts, freshness)",
                [
                    cw.GraphWidget(
                        title="Audit: gap and conflict offsets per topic",
                        left=gap_metrics + conflict_metrics,
                        left_annotations=[cw.HorizontalAnnotation(value=1, label="alarm")],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Audit: duplicates; pending compactions and small objects per topic",
                        left=[self._topic_metric("DuplicateOffsets", topic) for topic in topics],
                        right=[
                            self._topic_metric(name, topic)
                            for topic in topics
                            for name in ("PendingCompactions", "SmallObjects")
                        ],
                        width=8,
                    ),
                    cw.GraphWidget(
                        title="Audit: freshness per topic (s)",
                        left=freshness_metrics,
                        left_annotations=(
                            [cw.HorizontalAnnotation(value=audit.freshness_alarm_minutes * 60, label="alarm")]
                            if audit.freshness_alarm_minutes is not None
                            else []
                        ),
                        width=8,
                    ),
                ],
                alarms,
            )
        )

    # -- building blocks ----------------------------------------------------------------------------------------

    def _function(
        self, construct_id: str, *, handler: str, description: str, memory_mib: int, timeout: Duration
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self, f"{construct_id}Logs", retention=self._log_retention, removal_policy=self._removal_policy
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description}: least privilege, written out per statement",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        function = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=_ARCHITECTURES[self._architecture],
            handler=handler,
            code=self._code,
            memory_size=memory_mib,
            timeout=timeout,
            role=role,
            log_group=log_group,
            environment={
                **self.settings.to_env(),
                "POWERTOOLS_SERVICE_NAME": self._service_name,
                "POWERTOOLS_METRICS_NAMESPACE": self._namespace,
            },
        )
        acknowledge(
            function,
            "L1",
            "python3.13 is the runtime the maintenance handlers, the shared engine and its wheels are built for.",
        )
        return function

    def _schedule(self, construct_id: str, description: str, expression: str, function: lambda_.Function) -> None:
        """An EventBridge rule that invokes ``function`` on ``expression`` (retried twice if the invoke fails)."""
        events.Rule(
            self,
            construct_id,
            description=description,
            schedule=events.Schedule.expression(expression),
            targets=[targets.LambdaFunction(function, retry_attempts=2)],
        )

    def _queue(
        self,
        construct_id: str,
        *,
        retention: Duration,
        visibility: Duration | None = None,
        dead_letter_queue: sqs.DeadLetterQueue | None = None,
    ) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            retention_period=retention,
            visibility_timeout=visibility,
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # work items name objects, they hold no record data
            enforce_ssl=True,
            dead_letter_queue=dead_letter_queue,
            removal_policy=RemovalPolicy.DESTROY,  # transient work, rebuilt by the next scheduled run
        )
        if dead_letter_queue is None:
            acknowledge(queue, "SQS3", "This queue is itself the dead-letter queue of the compaction work queue.")
        return queue

    def _allow_list(self, function: lambda_.Function, prefixes: Sequence[str]) -> None:
        assert function.role is not None
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self._bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
            )
        )

    def _allow_objects(self, function: lambda_.Function, actions: list[str], prefixes: Sequence[str]) -> None:
        assert function.role is not None
        resources = [self._bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
        function.role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
        acknowledge_wildcard_resources(
            function.role,
            resources,
            f"{', '.join(actions)} are scoped to the key prefixes {', '.join(repr(p) for p in prefixes)}; object "
            "keys are only known at run time, so each prefix ends in '*'.",
        )

    def _allow_kms(self, function: lambda_.Function, actions: list[str]) -> None:
        if self._bucket_key_arn is None:
            return
        assert function.role is not None
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions,
                resources=[self._bucket_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.amazonaws.com"}},
            )
        )

    def _allow_send(self, function: lambda_.Function, queue: sqs.IQueue) -> None:
        assert function.role is not None
        function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue.queue_arn])
        )

    def _own_metric(self, name: str, statistic: str, *, period: Duration = PERIOD) -> cw.Metric:
        return cw.Metric(
            namespace=self._namespace,
            metric_name=name,
            dimensions_map={"service": self._service_name},
            statistic=statistic,
            period=period,
            label=name,
        )

    def _topic_metric(self, name: str, topic: str, statistic: str = cw.Stats.MAXIMUM) -> cw.Metric:
        return cw.Metric(
            namespace=self._namespace,
            metric_name=name,
            dimensions_map={"service": self._service_name, "topic": topic},
            statistic=statistic,
            period=Duration.hours(1),
            label=f"{name} {topic}",
        )

    def _alarm(
        self,
        name: str,
        description: str,
        metric: cw.Metric,
        *,
        threshold: float = 1,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> None:
        # The audit's metrics come once per run: IGNORE keeps an alarm in ALARM between runs until a run says 0.
        self.alarms[name] = cw.Alarm(
            self,
            name,
            alarm_description=f"{description} Runbook: {RUNBOOK}, {name}.",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=missing,
        )


def _construct_safe(topic: str) -> str:
    """A construct id fragment for a topic: letters and digits, plus a hash so two topics never collide."""
    return re.sub(r"[^A-Za-z0-9]", "", topic)[:40] + hashlib.sha256(topic.encode()).hexdigest()[:6]
