"""The archiver's CloudWatch alarms and dashboard, and the SNS topic that pages someone.

What each alarm means and what to do about it: docs/operations.md, "Runbook" (one entry per alarm, by its id).

Missing data is decided per alarm, because silence means different things:

* ``NothingArchived`` (the heartbeat) treats missing data as *breaching*: a mapping that cannot poll (expired
  secret, missing security-group rule, IAM error) invokes nothing, so every other metric goes silent too.
* Lag alarms *ignore* missing data: silence neither raises nor clears them (the heartbeat owns silence), so a lag
  alarm that fired stays in ALARM if the mapping then stops reporting.
* Errors, throttles and the queue alarms treat missing data as *not breaching*: no invocation means no error, and
  SQS reports a queue's metrics while it holds messages ("active" queue), so an idle queue is an empty one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import EsmMetric, MonitoringConfig, OnFailure
from infra.function import METRICS_NAMESPACE

# The function's own metrics (Powertools EMF, dimension service=<stack name>), summed per minute.
CUSTOM_METRICS = ("RecordsArchived", "BytesWritten", "ObjectsWritten", "RecordsDeadLettered", "BatchesFailed")
PERIOD = Duration.minutes(1)
ALARM_WINDOW = Duration.minutes(5)  # errors and throttles are counted over five minutes
LAMBDA_NAMESPACE = "AWS/Lambda"
# The dimension Lambda publishes a mapping's own metrics with (Lambda developer guide, "Viewing metrics for Lambda
# functions": "By Event Source Mapping UUID (EventSourceMappingUUID)"); the value is the mapping's UUID, its Ref.
MAPPING_DIMENSION = "EventSourceMappingUUID"
RUNBOOK = "docs/operations.md, section Runbook"
WIDTH = 8


@dataclass(frozen=True, kw_only=True)
class WatchedMappings:
    """The event source mappings to watch (topic -> mapping; empty without an event source) and how they report."""

    mappings: Mapping[str, lambda_.EventSourceMapping]
    enabled: bool = True
    metrics: tuple[EsmMetric, ...] = ()
    on_failure: OnFailure = "queue"


class Monitoring(Construct):
    """Alarms (heartbeat, per-topic lag, errors, throttles, dead letters, given-up batches) and a dashboard.

    ``watch()`` is the hook for more: it adds a dashboard row of widgets and alarms that notify like the others
    (meant for the archive audit's freshness and gap metrics).

    Attributes: ``dashboard``, ``alarms`` (id -> Alarm), ``topic`` (the SNS topic alarms notify, or None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MonitoringConfig,
        function: lambda_.IFunction,
        timeout_seconds: int,
        dead_letter_queue: sqs.IQueue,
        on_failure_queue: sqs.IQueue | None,
        mappings: WatchedMappings,
        service_name: str,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._service_name = service_name
        self.alarms: dict[str, cw.Alarm] = {}
        self.topic = self._notification_topic(config, dashboard_name)

        archived = self._own_metric("RecordsArchived", cw.Stats.SUM, "RecordsArchived")
        lag_metrics = self._lag_alarms(function, mappings)
        if mappings.mappings and mappings.enabled and config.heartbeat_minutes:
            self._alarm(
                "NothingArchived",
                f"Nothing was archived for {config.heartbeat_minutes} minutes while the mapping is enabled: the "
                "archiver has stalled (or every topic was quiet that long). Missing data counts as breaching.",
                archived,
                threshold=1,
                comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=config.heartbeat_minutes,
                missing=cw.TreatMissingData.BREACHING,
            )
        elif mappings.mappings and mappings.enabled:
            Annotations.of(self).add_warning_v2(
                "archiver:noHeartbeat",
                "monitoring.heartbeatMinutes is 0: no alarm fires when the archiver stops archiving.",
            )
        self._alarm(
            "FunctionErrors",
            "The archiver failed batches (S3/SQS trouble or bad config); offsets do not move.",
            function.metric_errors(statistic=cw.Stats.SUM, period=ALARM_WINDOW),
            threshold=config.errors_threshold,
        )
        self._alarm(
            "FunctionThrottles",
            "Invocations were throttled: raise reserved/account concurrency or lower pollers.",
            function.metric_throttles(statistic=cw.Stats.SUM, period=ALARM_WINDOW),
            threshold=config.throttles_threshold,
        )
        dead_letter_age = Duration.days(config.dead_letter_age_alarm_days)
        dead_letter_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            statistic=cw.Stats.MAXIMUM, period=PERIOD, label="visible"
        )
        dead_letter_oldest = dead_letter_queue.metric_approximate_age_of_oldest_message(
            statistic=cw.Stats.MAXIMUM, period=PERIOD, label="oldest (s)"
        )
        self._alarm(
            "DeadLetterQueueNotEmpty",
            "The function dead-lettered records (payload kept): inspect the queue, fix, re-archive or discard.",
            dead_letter_depth,
            threshold=1,
        )
        self._alarm(
            "DeadLetterQueueOldMessage",
            f"A dead-lettered record has waited {config.dead_letter_age_alarm_days} days; the queue deletes it "
            "after 14.",
            dead_letter_oldest,
            threshold=dead_letter_age.to_seconds(),
        )
        given_up_widgets = self._given_up_alarms(on_failure_queue, mappings)

        durations = [
            function.metric_duration(statistic=stat, period=PERIOD, label=f"Duration {stat}")
            for stat in ("p50", "p99", "Maximum")
        ]
        timeout_ms = timeout_seconds * 1000
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.hours(3),
            widgets=[
                [
                    cw.TextWidget(
                        markdown=f"# {dashboard_name}\nKafka -> Lambda -> S3 (Avro). Namespace `{METRICS_NAMESPACE}`, "
                        f"service `{service_name}`. Every alarm has a runbook entry: {RUNBOOK}.",
                        width=24,
                        height=2,
                    )
                ],
                [cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3)],
                [
                    cw.GraphWidget(
                        title="Offset lag per topic (records)",
                        left=lag_metrics,
                        left_annotations=[_line(config.offset_lag_threshold, "lag alarm")],
                        width=WIDTH,
                    ),
                    cw.GraphWidget(
                        title="Duration against the timeout (ms)",
                        left=durations,
                        left_annotations=[_line(timeout_ms, f"timeout {timeout_seconds} s")],
                        left_y_axis=cw.YAxisProps(min=0, max=timeout_ms * 1.1),
                        width=WIDTH,
                    ),
                    cw.GraphWidget(
                        title="Errors and throttles (per 5 minutes)",
                        left=[
                            function.metric_errors(statistic=cw.Stats.SUM, period=ALARM_WINDOW),
                            function.metric_throttles(statistic=cw.Stats.SUM, period=ALARM_WINDOW),
                        ],
                        left_annotations=[
                            _line(config.errors_threshold, "errors alarm"),
                            _line(config.throttles_threshold, "throttles alarm", color=cw.Color.ORANGE),
                        ],
                        right=[function.metric_invocations(statistic=cw.Stats.SUM, period=ALARM_WINDOW)],
                        width=WIDTH,
                    ),
                ],
                [
                    cw.GraphWidget(
                        title="Records archived / dead-lettered",
                        left=[archived, self._own_metric("RecordsDeadLettered", cw.Stats.SUM, "RecordsDeadLettered")],
                        left_annotations=[_line(1, "heartbeat: below means nothing archived", color=cw.Color.ORANGE)],
                        right=[self._own_metric("BatchesFailed", cw.Stats.SUM, "BatchesFailed")],
                        width=WIDTH,
                    ),
                    *_queue_widgets(
                        "Dead letters",
                        dead_letter_queue,
                        dead_letter_depth,
                        dead_letter_oldest,
                        alarm_label="dead-letter alarm",
                        age_lines=[
                            _line(dead_letter_age.to_seconds(), f"age alarm ({config.dead_letter_age_alarm_days} d)"),
                            _line(Duration.days(14).to_seconds(), "deleted by SQS (14 d)", color=cw.Color.GREY),
                        ],
                    ),
                ],
                given_up_widgets,
                [
                    cw.GraphWidget(
                        title="Concurrent executions",
                        left=[
                            function.metric(
                                "ConcurrentExecutions",
                                statistic=cw.Stats.MAXIMUM,
                                period=PERIOD,
                                label="ConcurrentExecutions (max)",
                            )
                        ],
                        width=WIDTH,
                    ),
                    cw.GraphWidget(
                        title="Bytes and objects written",
                        left=[self._own_metric("BytesWritten", cw.Stats.SUM, "BytesWritten")],
                        right=[self._own_metric("ObjectsWritten", cw.Stats.SUM, "ObjectsWritten")],
                        width=WIDTH,
                    ),
                    cw.GraphWidget(
                        title="Batch latency p50 / p99 (ms)",
                        left=[
                            self._own_metric("BatchLatency", stat, f"BatchLatency {stat}") for stat in ("p50", "p99")
                        ],
                        left_annotations=[_line(timeout_ms, f"timeout {timeout_seconds} s")],
                        width=WIDTH,
                    ),
                ],
            ],
        )

    # ----------------------------------------------------------------------------------------------- the hook

    def watch(self, *, title: str, widgets: Sequence[cw.IWidget], alarms: Sequence[cw.Alarm] = ()) -> None:
        """Add a dashboard row (a title, ``widgets``, and the status of ``alarms``) and notify on ``alarms``.

        The hook for metrics this construct does not own, e.g. the archive audit's freshness and gap metrics.
        """
        for alarm in alarms:
            self._notify(alarm)
            self.alarms[alarm.node.id] = alarm
        self.dashboard.add_widgets(cw.TextWidget(markdown=f"## {title}", width=24, height=1))
        if alarms:
            self.dashboard.add_widgets(cw.AlarmStatusWidget(title=f"{title}: alarms", alarms=list(alarms), width=24))
        self.dashboard.add_widgets(*widgets)

    # ----------------------------------------------------------------------------------------------- alarms

    def _lag_alarms(self, function: lambda_.IFunction, watched: WatchedMappings) -> list[cw.IMetric]:
        """One lag alarm per topic when the mappings publish KafkaMetrics, else one for the function; M-of-N."""
        config = self._config
        window = f"{config.offset_lag_datapoints} of the last {config.offset_lag_evaluation_minutes} minutes"
        if not watched.mappings:
            return [function.metric("OffsetLag", statistic=cw.Stats.MAXIMUM, period=PERIOD, label="OffsetLag (max)")]
        if "KafkaMetrics" in watched.metrics:
            metrics: list[cw.IMetric] = []
            for topic, mapping in watched.mappings.items():
                lag = self._mapping_metric(mapping, "MaxOffsetLag", cw.Stats.MAXIMUM, f"{topic} (max partition lag)")
                metrics.append(lag)
                self._alarm(
                    f"OffsetLagHigh{mapping.node.id}",
                    f"Topic {topic!r}: its consumer group is more than {config.offset_lag_threshold} records behind "
                    f"(max over partitions) in {window}.",
                    lag,
                    threshold=config.offset_lag_threshold,
                    comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=config.offset_lag_evaluation_minutes,
                    datapoints=config.offset_lag_datapoints,
                    missing=cw.TreatMissingData.IGNORE,
                )
            return metrics
        # On-demand mappings publish no metric per mapping: OffsetLag is per function, the max over its topics.
        lag = function.metric("OffsetLag", statistic=cw.Stats.MAXIMUM, period=PERIOD, label="OffsetLag (max)")
        self._alarm(
            "OffsetLagHigh",
            f"A topic's consumer group is more than {config.offset_lag_threshold} records behind in {window} "
            f"(topics: {', '.join(watched.mappings)}).",
            lag,
            threshold=config.offset_lag_threshold,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=config.offset_lag_evaluation_minutes,
            datapoints=config.offset_lag_datapoints,
            missing=cw.TreatMissingData.IGNORE,
        )
        return [lag]

    def _given_up_alarms(self, queue: sqs.IQueue | None, watched: WatchedMappings) -> list[cw.IWidget]:
        """Alarms on batches the mapping gave up on (not archived, only in Kafka); returns their dashboard row."""
        config = self._config
        widgets: list[cw.IWidget] = []
        if queue is not None:
            depth = queue.metric_approximate_number_of_messages_visible(
                statistic=cw.Stats.MAXIMUM, period=PERIOD, label="waiting"
            )
            oldest = queue.metric_approximate_age_of_oldest_message(
                statistic=cw.Stats.MAXIMUM, period=PERIOD, label="oldest (s)"
            )
            self._alarm(
                "OnFailureQueueNotEmpty",
                "The mapping gave up on a batch: those records are NOT archived, only in Kafka. Re-archive the "
                "offset range with `kafka-s3-archiver backfill` before Kafka retention deletes it.",
                depth,
                threshold=1,
            )
            self._alarm(
                "OnFailureQueueOldMessage",
                f"A given-up batch has waited {config.on_failure_age_alarm_hours} hours without being re-archived; "
                "Kafka retention may delete its records.",
                oldest,
                threshold=Duration.hours(config.on_failure_age_alarm_hours).to_seconds(),
            )
            widgets += _queue_widgets(
                "Given-up batches",
                queue,
                depth,
                oldest,
                alarm_label="given-up alarm",
                age_lines=[
                    _line(
                        Duration.hours(config.on_failure_age_alarm_hours).to_seconds(),
                        f"age alarm ({config.on_failure_age_alarm_hours} h)",
                    )
                ],
            )
        if "EventCount" in watched.metrics and watched.mappings:
            given_up = []
            for index, (topic, mapping) in enumerate(watched.mappings.items()):
                # Records sent to the on-failure destination, plus records dropped (no destination, or delivery to
                # it failed): either way they were not archived (Lambda developer guide, event source mapping
                # metrics, OnFailureDestinationDeliveredEventCount and DroppedEventCount).
                # Metric ids are unique per graph, so each topic's pair gets its own.
                records = cw.MathExpression(
                    expression=f"FILL(delivered{index}, 0) + FILL(dropped{index}, 0)",
                    using_metrics={
                        f"delivered{index}": self._mapping_metric(
                            mapping, "OnFailureDestinationDeliveredEventCount", cw.Stats.SUM, "delivered"
                        ),
                        f"dropped{index}": self._mapping_metric(mapping, "DroppedEventCount", cw.Stats.SUM, "dropped"),
                    },
                    period=PERIOD,
                    label=f"{topic} records given up",
                )
                given_up.append(records)
                self._alarm(
                    f"RecordsGivenUp{mapping.node.id}",
                    f"Topic {topic!r}: the mapping gave up on records (sent to the on-failure destination or "
                    "dropped). They are NOT archived, only in Kafka: re-archive them with "
                    "`kafka-s3-archiver backfill`.",
                    records,
                    threshold=1,
                )
            widgets.append(
                cw.GraphWidget(
                    title="Records given up per topic",
                    left=given_up,
                    left_annotations=[_line(1, "given-up alarm")],
                    width=WIDTH,
                )
            )
        elif queue is None and watched.mappings:
            Annotations.of(self).add_warning_v2(
                "archiver:givenUpUnwatched",
                f"eventSource.onFailure is {watched.on_failure!r} without the mapping's EventCount metrics: no alarm "
                "fires when the mapping gives up on a batch (those records are not archived). Use onFailure 'queue', "
                "or provisioned mode with metrics.",
            )
        return widgets

    def _alarm(
        self,
        alarm_id: str,
        description: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods: int = 1,
        datapoints: int | None = None,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            alarm_id,
            alarm_description=f"{description} Runbook: {RUNBOOK}, {alarm_id}.",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=missing,
        )
        self._notify(alarm)
        self.alarms[alarm_id] = alarm
        return alarm

    def _notify(self, alarm: cw.Alarm) -> None:
        if self.topic is not None:
            action = cw_actions.SnsAction(self.topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    # ----------------------------------------------------------------------------------------------- notifications

    def _notification_topic(self, config: MonitoringConfig, dashboard_name: str) -> sns.ITopic | None:
        """The configured topic (existing or new), or None with a synth warning: alarms nobody hears are useless."""
        if config.alarm_topic_arn:
            Annotations.of(self).add_info(
                f"Alarms notify the existing topic {config.alarm_topic_arn}: its access policy must allow "
                "cloudwatch.amazonaws.com to sns:Publish (docs/configuration.md, monitoring)."
            )
            return sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
        if not (config.create_alarm_topic or config.alarm_emails):
            Annotations.of(self).add_warning_v2(
                "archiver:noAlarmNotifications",
                "monitoring has no notification target (alarmEmails, createAlarmTopic or alarmTopicArn): the alarms "
                "change state but page nobody.",
            )
            return None
        topic = sns.Topic(self, "AlarmTopic", display_name=f"{dashboard_name} alarms", enforce_ssl=True)
        # A topic policy replaces SNS's default one, so CloudWatch needs its own Allow to publish alarm state
        # changes; scoped to this account's alarms (SNS developer guide, "Amazon SNS access control").
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        for email in config.alarm_emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        if not config.alarm_emails:
            Annotations.of(self).add_warning_v2(
                "archiver:alarmTopicWithoutSubscriber",
                "monitoring.createAlarmTopic makes a topic without subscribers: subscribe to the AlarmTopicArn output "
                "(or set alarmEmails), or the alarms page nobody.",
            )
        return topic

    # ----------------------------------------------------------------------------------------------- metrics

    def _own_metric(self, name: str, statistic: str, label: str) -> cw.Metric:
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": self._service_name},
            statistic=statistic,
            period=PERIOD,
            label=label,
        )

    @staticmethod
    def _mapping_metric(mapping: lambda_.EventSourceMapping, name: str, statistic: str, label: str) -> cw.Metric:
        return cw.Metric(
            namespace=LAMBDA_NAMESPACE,
            metric_name=name,
            dimensions_map={MAPPING_DIMENSION: mapping.event_source_mapping_id},
            statistic=statistic,
            period=PERIOD,
            label=label,
        )


def _queue_widgets(
    what: str,
    queue: sqs.IQueue,
    depth: cw.IMetric,
    oldest: cw.IMetric,
    *,
    alarm_label: str,
    age_lines: list[cw.HorizontalAnnotation],
) -> list[cw.IWidget]:
    """A queue's two graphs: messages sent per minute and waiting (with its alarm's line), and the oldest's age."""
    return [
        cw.GraphWidget(
            title=f"{what}: sent per minute and waiting",
            left=[queue.metric_number_of_messages_sent(statistic=cw.Stats.SUM, period=PERIOD, label="sent"), depth],
            left_annotations=[_line(1, alarm_label)],
            width=WIDTH,
        ),
        cw.GraphWidget(title=f"{what}: oldest message age (s)", left=[oldest], left_annotations=age_lines, width=WIDTH),
    ]


def _line(value: float, label: str, *, color: str = cw.Color.RED) -> cw.HorizontalAnnotation:
    """A threshold line on a graph."""
    return cw.HorizontalAnnotation(value=value, label=label, color=color)
