"""Alarms, notifications and the dashboard, on the real stacks and on the Monitoring construct in a bare stack.

Each alarm is checked for what it watches, its M-of-N window and, deliberately, how it treats missing data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match, Template

from infra import PROJECT_ROOT
from infra.config import MonitoringConfig
from infra.monitoring import Monitoring, WatchedMappings
from tests.infra.conftest import Synthesized, example, with_changes

Synth = Callable[..., Synthesized]
DAY = 24 * 3600


def alarms(result: Synthesized) -> dict[str, dict[str, Any]]:
    """Alarm properties by the alarm's construct id (``Monitoring.alarms`` keys), for the archiver's own stack (the
    maintenance alarms it also watches live in their nested stack: tests/infra/test_maintenance.py)."""
    template = result.template.to_json()["Resources"]
    return {
        alarm_id: template[result.stack.get_logical_id(alarm.node.default_child)]["Properties"]  # type: ignore[arg-type]
        for alarm_id, alarm in result.stack.monitoring.alarms.items()
        if cdk.Stack.of(alarm) is result.stack
    }


def metric_of(alarm: dict[str, Any]) -> dict[str, Any]:
    """(namespace, name, dimensions, stat, period) of a single-metric alarm, in either of CDK's renderings."""
    if "MetricName" in alarm:
        return {
            "namespace": alarm["Namespace"],
            "name": alarm["MetricName"],
            "dimensions": alarm.get("Dimensions", []),
            "stat": alarm["Statistic"],
            "period": alarm["Period"],
        }
    (query,) = alarm["Metrics"]
    stat = query["MetricStat"]
    return {
        "namespace": stat["Metric"]["Namespace"],
        "name": stat["Metric"]["MetricName"],
        "dimensions": stat["Metric"].get("Dimensions", []),
        "stat": stat["Stat"],
        "period": stat["Period"],
    }


def mapping_ids(result: Synthesized) -> dict[str, str]:
    """topic -> logical id of its mapping."""
    return {
        props["Properties"]["Topics"][0]: logical_id
        for logical_id, props in result.resources("AWS::Lambda::EventSourceMapping").items()
    }


def queue_id(result: Synthesized, construct: str) -> str:
    (found,) = [k for k in result.resources("AWS::SQS::Queue") if k.startswith(f"{construct}Queue")]
    return found


def dashboard(result: Synthesized) -> dict[str, Any]:
    body = result.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    parsed: dict[str, Any] = json.loads(render(body))
    return parsed


def render(node: Any) -> str:
    """A Fn::Join'ed string with each reference replaced by a <Ref> placeholder (JSON-safe)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return str(delimiter).join(render(item) for item in items)
    if isinstance(node, dict) and "Ref" in node:
        return f"<{node['Ref']}>"
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return "<{}.{}>".format(*node["Fn::GetAtt"])
    return json.dumps(node)


def widget(result: Synthesized, title: str) -> dict[str, Any]:
    (found,) = [w["properties"] for w in dashboard(result)["widgets"] if w["properties"].get("title") == title]
    return dict(found)


def threshold_lines(properties: dict[str, Any]) -> dict[str, float]:
    return {a["label"]: a["value"] for a in properties.get("annotations", {}).get("horizontal", [])}


# ------------------------------------------------------------------------------------------------ heartbeat


def test_heartbeat_alarms_when_nothing_is_archived_and_silence_counts(msk: Synthesized) -> None:
    heartbeat = alarms(msk)["NothingArchived"]
    assert metric_of(heartbeat) == {
        "namespace": "KafkaS3Archiver",
        "name": "RecordsArchived",
        "dimensions": [{"Name": "service", "Value": "KafkaS3Archiver"}],
        "stat": "Sum",
        "period": 60,
    }
    # Every one of the last 60 minutes archived nothing (or reported nothing at all: a mapping that cannot poll).
    assert (heartbeat["ComparisonOperator"], heartbeat["Threshold"]) == ("LessThanThreshold", 1)
    assert heartbeat["EvaluationPeriods"] == 60
    assert heartbeat.get("DatapointsToAlarm", 60) == 60
    assert heartbeat["TreatMissingData"] == "breaching"


def test_heartbeat_minutes_are_configurable(synth: Synth) -> None:
    result = synth(with_changes(example("msk"), {"monitoring.heartbeatMinutes": 240}))
    assert alarms(result)["NothingArchived"]["EvaluationPeriods"] == 240


@pytest.mark.parametrize(
    ("changes", "with_event_source"),
    [({"eventSource.enabled": False}, True), ({}, False), ({"monitoring.heartbeatMinutes": 0}, True)],
    ids=["mapping-disabled", "no-mapping", "turned-off"],
)
def test_no_heartbeat_without_an_enabled_mapping_or_when_off(
    synth: Synth, changes: dict[str, Any], with_event_source: bool
) -> None:
    result = synth(with_changes(example("msk"), changes), with_event_source=with_event_source)
    assert "NothingArchived" not in alarms(result)
    if changes.get("monitoring.heartbeatMinutes") == 0:
        Annotations.from_stack(result.stack).has_warning("*", Match.string_like_regexp("heartbeatMinutes is 0"))


def test_missing_data_is_decided_per_alarm(msk: Synthesized, self_managed: Synthesized) -> None:
    """Silence means a stall for the heartbeat, nothing for lag (kept state), and no trouble for counters."""
    for result in (msk, self_managed):
        for alarm_id, alarm in alarms(result).items():
            if alarm_id == "NothingArchived":
                expected = "breaching"
            elif alarm_id.startswith("OffsetLagHigh"):
                expected = "ignore"
            else:
                expected = "notBreaching"
            assert alarm["TreatMissingData"] == expected, alarm_id


# ------------------------------------------------------------------------------------------------ lag


def test_lag_per_topic_from_the_mapping_metrics_m_of_n(self_managed: Synthesized) -> None:
    (mapping,) = mapping_ids(self_managed).values()
    (lag_id,) = [a for a in alarms(self_managed) if a.startswith("OffsetLagHigh")]
    lag = alarms(self_managed)[lag_id]
    assert metric_of(lag) == {
        "namespace": "AWS/Lambda",
        "name": "MaxOffsetLag",
        "dimensions": [{"Name": "EventSourceMappingUUID", "Value": {"Ref": mapping}}],
        "stat": "Maximum",
        "period": 60,
    }
    assert (lag["Threshold"], lag["ComparisonOperator"]) == (50000, "GreaterThanThreshold")
    assert (lag["DatapointsToAlarm"], lag["EvaluationPeriods"]) == (10, 15)
    assert "clickstream" in lag["AlarmDescription"]


def test_several_topics_get_one_lag_alarm_each(synth: Synth) -> None:
    result = synth(
        with_changes(
            example("msk"),
            {"eventSource.provisionedPollers": {"minimum": 1, "maximum": 2}, "monitoring.offsetLagDatapoints": 3},
        )
    )
    lag = {k: v for k, v in alarms(result).items() if k.startswith("OffsetLagHigh")}
    watched = {metric_of(alarm)["dimensions"][0]["Value"]["Ref"] for alarm in lag.values()}
    assert watched == set(mapping_ids(result).values())
    assert {alarm["DatapointsToAlarm"] for alarm in lag.values()} == {3}


def test_on_demand_lag_is_the_function_offset_lag_m_of_n(msk: Synthesized) -> None:
    lag = alarms(msk)["OffsetLagHigh"]
    function_id = next(iter(msk.resources("AWS::Lambda::Function")))
    assert metric_of(lag) == {
        "namespace": "AWS/Lambda",
        "name": "OffsetLag",
        "dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
        "stat": "Maximum",
        "period": 60,
    }
    assert (lag["DatapointsToAlarm"], lag["EvaluationPeriods"], lag["Threshold"]) == (10, 15, 10000)
    assert "orders, payments" in lag["AlarmDescription"]


# ------------------------------------------------------------------------------------------------ dead letters


def test_dead_letters_alarm_on_depth_and_on_age_well_before_retention(msk: Synthesized) -> None:
    found = alarms(msk)
    dead_letters = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id(msk, "DeadLetters"), "QueueName"]}}
    depth, age = found["DeadLetterQueueNotEmpty"], found["DeadLetterQueueOldMessage"]
    assert metric_of(depth)["name"] == "ApproximateNumberOfMessagesVisible"
    assert metric_of(depth)["dimensions"] == [dead_letters]
    assert (depth["Threshold"], depth["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert metric_of(age)["name"] == "ApproximateAgeOfOldestMessage"
    assert metric_of(age)["dimensions"] == [dead_letters]
    assert age["Threshold"] == 4 * DAY < 14 * DAY


def test_given_up_batches_page_on_their_own_queue(msk: Synthesized, self_managed: Synthesized) -> None:
    for result, hours in ((msk, 24), (self_managed, 12)):
        found = alarms(result)
        on_failure = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id(result, "OnFailure"), "QueueName"]}}
        depth, age = found["OnFailureQueueNotEmpty"], found["OnFailureQueueOldMessage"]
        assert metric_of(depth) | {"dimensions": None} == {
            "namespace": "AWS/SQS",
            "name": "ApproximateNumberOfMessagesVisible",
            "dimensions": None,
            "stat": "Maximum",
            "period": 60,
        }
        assert metric_of(depth)["dimensions"] == metric_of(age)["dimensions"] == [on_failure]
        assert depth["Threshold"] == 1
        assert age["Threshold"] == hours * 3600
        assert "NOT archived, only in Kafka" in depth["AlarmDescription"]
        assert "backfill" in depth["AlarmDescription"]


def test_records_given_up_per_topic_from_the_mapping_metrics(self_managed: Synthesized) -> None:
    (mapping,) = mapping_ids(self_managed).values()
    (given_up_id,) = [a for a in alarms(self_managed) if a.startswith("RecordsGivenUp")]
    alarm = alarms(self_managed)[given_up_id]
    (expression, *inputs) = alarm["Metrics"]
    assert re.fullmatch(r"FILL\((delivered\d+), 0\) \+ FILL\((dropped\d+), 0\)", expression["Expression"])
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in inputs} == {
        "OnFailureDestinationDeliveredEventCount",
        "DroppedEventCount",
    }
    for query in inputs:
        assert query["MetricStat"]["Metric"]["Dimensions"] == [
            {"Name": "EventSourceMappingUUID", "Value": {"Ref": mapping}}
        ]
        assert query["MetricStat"]["Stat"] == "Sum"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_errors_and_throttles(msk: Synthesized) -> None:
    found = alarms(msk)
    for alarm_id, name in (("FunctionErrors", "Errors"), ("FunctionThrottles", "Throttles")):
        assert metric_of(found[alarm_id])["name"] == name
        assert metric_of(found[alarm_id])["period"] == 300
        assert found[alarm_id]["Threshold"] == 1


# ------------------------------------------------------------------------------------------------ notifications


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(msk: Synthesized) -> None:
    topic_id = next(iter(msk.resources("AWS::SNS::Topic")))
    for alarm_id, alarm in alarms(msk).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], alarm_id
        assert alarm["OKActions"] == [{"Ref": topic_id}], alarm_id
    subscription = msk.only("AWS::SNS::Subscription")
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "platform-oncall@example.com")


def test_topic_policy_lets_cloudwatch_publish_for_this_account_only(msk: Synthesized) -> None:
    topic_id = next(iter(msk.resources("AWS::SNS::Topic")))
    statements = msk.only("AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = render(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert source == "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*"
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_synth_warns_when_alarms_page_nobody(local: Synthesized, synth: Synth) -> None:
    assert not local.resources("AWS::SNS::Topic")
    assert all("AlarmActions" not in alarm for alarm in alarms(local).values())
    Annotations.from_stack(local.stack).has_warning("*", Match.string_like_regexp("no notification target"))
    silent = synth(with_changes(example("local"), {"monitoring": {"createAlarmTopic": True}}))
    Annotations.from_stack(silent.stack).has_warning("*", Match.string_like_regexp("without subscribers"))
    assert silent.resources("AWS::SNS::Topic")


@pytest.mark.parametrize("name", ["msk", "self-managed", "typed"])
def test_examples_page_someone_without_warnings(synth: Synth, name: str) -> None:
    result = synth(example(name))
    annotations = Annotations.from_stack(result.stack)
    annotations.has_no_warning("*", Match.string_like_regexp("no notification target"))
    annotations.has_no_warning("*", Match.string_like_regexp("without subscribers"))
    assert all(alarm.get("AlarmActions") for alarm in alarms(result).values())


def test_existing_topic_is_notified_and_its_policy_left_alone(synth: Synth) -> None:
    topic = "arn:aws:sns:eu-west-1:123456789012:platform-alarms"
    result = synth(with_changes(example("msk"), {"monitoring": {"alarmTopicArn": topic}}))
    assert not result.resources("AWS::SNS::Topic")
    assert not result.resources("AWS::SNS::TopicPolicy")
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms(result).values())
    Annotations.from_stack(result.stack).has_info("*", Match.string_like_regexp("must allow cloudwatch.amazonaws.com"))


# ------------------------------------------------------------------------------------------------ dashboard


def test_dashboard_lines_up_every_threshold(msk: Synthesized) -> None:
    lag = widget(msk, "Offset lag per topic (records)")
    assert threshold_lines(lag) == {"lag alarm": 10000}
    duration = widget(msk, "Duration against the timeout (ms)")
    assert threshold_lines(duration) == {"timeout 120 s": 120_000}
    assert {m[1] for m in duration["metrics"]} == {"Duration"}
    assert [m[-1]["stat"] for m in duration["metrics"]] == ["p50", "p99", "Maximum"]
    errors = widget(msk, "Errors and throttles (per 5 minutes)")
    assert threshold_lines(errors) == {"errors alarm": 1, "throttles alarm": 1}
    assert threshold_lines(widget(msk, "Dead letters: sent per minute and waiting")) == {"dead-letter alarm": 1}
    assert {m[1] for m in widget(msk, "Dead letters: sent per minute and waiting")["metrics"]} == {
        "NumberOfMessagesSent",
        "ApproximateNumberOfMessagesVisible",
    }
    age = threshold_lines(widget(msk, "Dead letters: oldest message age (s)"))
    assert age == {"age alarm (4 d)": 4 * DAY, "deleted by SQS (14 d)": 14 * DAY}
    assert threshold_lines(widget(msk, "Given-up batches: sent per minute and waiting")) == {"given-up alarm": 1}
    assert threshold_lines(widget(msk, "Given-up batches: oldest message age (s)")) == {"age alarm (24 h)": 24 * 3600}
    archived = widget(msk, "Records archived / dead-lettered")
    assert list(threshold_lines(archived).values()) == [1]


def test_dashboard_shows_lag_per_topic_and_given_up_records(self_managed: Synthesized) -> None:
    (mapping,) = mapping_ids(self_managed).values()
    lag = widget(self_managed, "Offset lag per topic (records)")
    (metric,) = lag["metrics"]
    assert metric[:4] == ["AWS/Lambda", "MaxOffsetLag", "EventSourceMappingUUID", f"<{mapping}>"]
    given_up = widget(self_managed, "Records given up per topic")
    assert threshold_lines(given_up) == {"given-up alarm": 1}
    assert "OnFailureDestinationDeliveredEventCount" in json.dumps(given_up["metrics"])


def test_alarm_status_lists_every_alarm(msk: Synthesized) -> None:
    status = widget(msk, "Alarms")
    listed = set(status["alarms"])
    assert len(listed) == len(alarms(msk))


# ------------------------------------------------------------------------------------------------ runbook


RUNBOOK_IDS = (
    "NothingArchived",
    "OffsetLagHigh",
    "FunctionErrors",
    "FunctionThrottles",
    "DeadLetterQueueNotEmpty",
    "DeadLetterQueueOldMessage",
    "OnFailureQueueNotEmpty",
    "OnFailureQueueOldMessage",
    "RecordsGivenUp",
    # the deployed maintenance's (infra/maintenance.py, tests/infra/test_maintenance.py)
    "ArchiveGaps",
    "ArchiveConflicts",
    "ArchiveStale",
    "AuditNotRunning",
    "AuditErrors",
    "CompactionWorkFailed",
    "CompactionPlannerErrors",
    "CompactionWorkerErrors",
    "CompactionConflicts",
)


def test_every_alarm_has_a_runbook_entry(msk: Synthesized, self_managed: Synthesized) -> None:
    operations = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    runbook = operations[operations.index("\n## Runbook") :]
    headings = set(re.findall(r"^### `(\w+)`", runbook, flags=re.MULTILINE))
    assert headings == set(RUNBOOK_IDS)
    for result in (msk, self_managed):
        for alarm_id, alarm in alarms(result).items():
            (base,) = [rid for rid in RUNBOOK_IDS if alarm_id.startswith(rid)]
            assert f"Runbook: docs/operations.md, section Runbook, {alarm_id}." in alarm["AlarmDescription"]
            assert base in headings


# ------------------------------------------------------------------------------------------------ the hook


def bare_monitoring(**config: Any) -> tuple[cdk.Stack, Monitoring]:
    stack = cdk.Stack(cdk.App(), "Bare")
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    monitoring = Monitoring(
        stack,
        "Monitoring",
        config=MonitoringConfig(**config),
        function=function,
        timeout_seconds=60,
        dead_letter_queue=sqs.Queue(stack, "Dlq"),
        on_failure_queue=None,
        mappings=WatchedMappings(mappings={}),
        service_name="svc",
        dashboard_name="Bare",
    )
    return stack, monitoring


def test_watch_hook_adds_a_dashboard_row_and_notifying_alarms() -> None:
    """The hook the archive audit's freshness and gap metrics are meant for."""
    stack, monitoring = bare_monitoring(create_alarm_topic=True, alarm_emails=("oncall@example.com",))
    freshness = cw.Metric(
        namespace="KafkaS3Archiver", metric_name="ArchiveFreshnessSeconds", period=cdk.Duration.hours(1)
    )
    stale = cw.Alarm(stack, "ArchiveStale", metric=freshness, threshold=7200, evaluation_periods=1)
    monitoring.watch(
        title="Archive audit",
        widgets=[
            cw.GraphWidget(
                title="Freshness (s)", left=[freshness], left_annotations=[cw.HorizontalAnnotation(value=7200)]
            )
        ],
        alarms=[stale],
    )
    template = Template.from_stack(stack)
    topic_id = next(iter(template.find_resources("AWS::SNS::Topic")))
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ArchiveFreshnessSeconds",
            "AlarmActions": [{"Ref": topic_id}],
            "OKActions": [{"Ref": topic_id}],
        },
    )
    assert monitoring.alarms["ArchiveStale"] is stale
    (body,) = [r["Properties"]["DashboardBody"] for r in template.find_resources("AWS::CloudWatch::Dashboard").values()]
    text = render(body)
    assert "## Archive audit" in text
    assert "Freshness (s)" in text
    assert "ArchiveFreshnessSeconds" in text


def test_bare_monitoring_without_mappings_has_no_mapping_alarms() -> None:
    stack, monitoring = bare_monitoring()
    assert set(monitoring.alarms) == {
        "FunctionErrors",
        "FunctionThrottles",
        "DeadLetterQueueNotEmpty",
        "DeadLetterQueueOldMessage",
    }
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("no notification target"))
