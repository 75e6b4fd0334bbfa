"""The archiver's CloudWatch dashboard and alarms, with an optional SNS topic for notifications."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MonitoringConfig
from infra.function import METRICS_NAMESPACE

# The function's own metrics (Powertools EMF, dimension service=<stack name>), summed per minute.
CUSTOM_METRICS = ("RecordsArchived", "BytesWritten", "ObjectsWritten", "RecordsDeadLettered", "BatchesFailed")
PERIOD = Duration.minutes(1)


class Monitoring(Construct):
    """Dashboard (lag, invocations, duration, concurrency, archive metrics, DLQ) and four alarms.

    Attributes: ``dashboard``, ``alarms`` (name -> Alarm), ``topic`` (the SNS topic alarms notify, or None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MonitoringConfig,
        function: lambda_.IFunction,
        queue: sqs.IQueue,
        service_name: str,
        dashboard_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        offset_lag = function.metric("OffsetLag", statistic=cw.Stats.MAXIMUM, period=PERIOD, label="OffsetLag (max)")
        invocations = function.metric_invocations(statistic=cw.Stats.SUM, period=PERIOD)
        errors = function.metric_errors(statistic=cw.Stats.SUM, period=PERIOD)
        throttles = function.metric_throttles(statistic=cw.Stats.SUM, period=PERIOD)
        concurrency = function.metric(
            "ConcurrentExecutions", statistic=cw.Stats.MAXIMUM, period=PERIOD, label="ConcurrentExecutions (max)"
        )
        durations = [
            function.metric_duration(statistic=stat, period=PERIOD, label=f"Duration {stat}") for stat in ("p50", "p99")
        ]

        def own_metric(name: str, statistic: str, label: str) -> cw.Metric:
            return cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": service_name},
                statistic=statistic,
                period=PERIOD,
                label=label,
            )

        custom = {name: own_metric(name, cw.Stats.SUM, name) for name in CUSTOM_METRICS}
        batch_latency = [own_metric("BatchLatency", stat, f"BatchLatency {stat}") for stat in ("p50", "p99")]
        depth = queue.metric_approximate_number_of_messages_visible(statistic=cw.Stats.MAXIMUM, period=PERIOD)
        oldest = queue.metric_approximate_age_of_oldest_message(statistic=cw.Stats.MAXIMUM, period=PERIOD)

        self.alarms = {
            "DeadLetterQueueNotEmpty": cw.Alarm(
                self,
                "DeadLetterQueueNotEmpty",
                alarm_description="Records or batches were dead-lettered: inspect the queue, fix, redrive.",
                metric=depth,
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            "FunctionErrors": cw.Alarm(
                self,
                "FunctionErrors",
                alarm_description="The archiver failed batches (S3/SQS trouble or bad config); offsets do not move.",
                metric=function.metric_errors(statistic=cw.Stats.SUM, period=Duration.minutes(5)),
                threshold=config.errors_threshold,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            "OffsetLagHigh": cw.Alarm(
                self,
                "OffsetLagHigh",
                alarm_description=f"The consumer group is more than {config.offset_lag_threshold} records behind "
                f"for {config.offset_lag_evaluation_minutes} minutes.",
                metric=function.metric("OffsetLag", statistic=cw.Stats.MAXIMUM, period=PERIOD),
                threshold=config.offset_lag_threshold,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=config.offset_lag_evaluation_minutes,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            "FunctionThrottles": cw.Alarm(
                self,
                "FunctionThrottles",
                alarm_description="Invocations were throttled: raise reserved/account concurrency or lower pollers.",
                metric=function.metric_throttles(statistic=cw.Stats.SUM, period=Duration.minutes(5)),
                threshold=config.throttles_threshold,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        }

        self.topic: sns.ITopic | None = None
        if config.alarm_topic_arn:
            self.topic = sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
        elif config.create_alarm_topic or config.alarm_emails:
            topic = sns.Topic(self, "AlarmTopic", display_name=f"{dashboard_name} alarms", enforce_ssl=True)
            for email in config.alarm_emails:
                topic.add_subscription(subscriptions.EmailSubscription(email))
            self.topic = topic
        if self.topic is not None:
            action = cw_actions.SnsAction(self.topic)
            for alarm in self.alarms.values():
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)

        self._action = cw_actions.SnsAction(self.topic) if self.topic is not None else None
        width = 8
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.hours(3),
            widgets=[
                [
                    cw.TextWidget(
                        markdown=f"# {dashboard_name}\nKafka -> Lambda -> S3 (Avro). Namespace `{METRICS_NAMESPACE}`, "
                        f"service `{service_name}`.",
                        width=24,
                        height=2,
                    )
                ],
                [
                    cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3),
                ],
                [
                    cw.GraphWidget(title="Event source offset lag", left=[offset_lag], width=width),
                    cw.GraphWidget(
                        title="Invocations, errors, throttles",
                        left=[invocations, errors, throttles],
                        right=[custom["BatchesFailed"]],
                        width=width,
                    ),
                    cw.GraphWidget(title="Duration p50 / p99 (ms)", left=durations, width=width),
                ],
                [
                    cw.GraphWidget(title="Concurrent executions", left=[concurrency], width=width),
                    cw.GraphWidget(
                        title="Records archived / dead-lettered",
                        left=[custom["RecordsArchived"], custom["RecordsDeadLettered"]],
                        width=width,
                    ),
                    cw.GraphWidget(
                        title="Bytes and objects written",
                        left=[custom["BytesWritten"]],
                        right=[custom["ObjectsWritten"]],
                        width=width,
                    ),
                ],
                [
                    cw.GraphWidget(title="Batch latency p50 / p99 (ms)", left=batch_latency, width=width),
                    cw.GraphWidget(title="Dead-letter queue depth", left=[depth], width=width),
                    cw.GraphWidget(title="Dead-letter queue oldest message age (s)", left=[oldest], width=width),
                ],
            ],
        )

    def add_maintenance(self, alarms: Mapping[str, cw.Alarm], widgets: Sequence[Sequence[cw.IWidget]]) -> None:
        """The deployed compaction's and audit's alarms (notifying like the others) and dashboard rows."""
        for name, alarm in alarms.items():
            self.alarms[name] = alarm
            if self._action is not None:
                alarm.add_alarm_action(self._action)
                alarm.add_ok_action(self._action)
        if alarms:
            self.dashboard.add_widgets(
                cw.AlarmStatusWidget(title="Maintenance alarms", alarms=list(alarms.values()), width=24, height=3)
            )
        for row in widgets:
            self.dashboard.add_widgets(*row)
