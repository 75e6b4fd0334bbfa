"""The deployed compaction and audit (infra/maintenance.py, a nested stack): schedules, queue, functions, least
privilege, alarms and the environment the handlers read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from archive_ops.maintenance import MaintenanceSettings
from infra.maintenance import ArchiveMaintenance
from tests.infra.conftest import Synthesized, as_list, assert_problem, example, problems_of, with_changes

Synth = Callable[..., Synthesized]


def nested(result: Synthesized) -> tuple[ArchiveMaintenance, Template]:
    maintenance = result.stack.maintenance
    assert maintenance is not None
    return maintenance, Template.from_stack(maintenance)


def functions(template: Template) -> dict[str, dict[str, Any]]:
    """Handler -> properties of every function in the nested stack."""
    return {
        r["Properties"]["Handler"]: r["Properties"] for r in template.find_resources("AWS::Lambda::Function").values()
    }


def role_statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [ref["Ref"] for ref in policy["Properties"]["Roles"]]
        if any(role.startswith(role_prefix) for role in roles):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}


@pytest.mark.parametrize("fixture", ["msk", "self_managed", "local", "typed"])
def test_every_example_deploys_schedules_compaction_and_audit(fixture: str, request: pytest.FixtureRequest) -> None:
    result: Synthesized = request.getfixturevalue(fixture)
    maintenance, template = nested(result)
    assert set(functions(template)) == {
        "compaction_planner.lambda_handler",
        "compaction_worker.lambda_handler",
        "audit.lambda_handler",
    }
    assert {f["Runtime"] for f in functions(template).values()} == {"python3.13"}
    rules = [r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()]
    assert sorted(rule["ScheduleExpression"] for rule in rules) == ["rate(1 hour)", "rate(1 hour)"]
    assert {"CompactionWorkFailed", "CompactionWorkerErrors", "CompactionConflicts", "AuditNotRunning"} <= set(
        maintenance.alarms
    )
    for topic in result.config.event_source.topics:
        assert any(name.startswith("ArchiveGaps") and topic.replace("-", "") in name for name in maintenance.alarms)
    # The parent stack lists them on its dashboard and wires them to its alarm topic like its own alarms.
    assert set(maintenance.alarms) <= set(result.stack.monitoring.alarms)


def test_work_queue_hands_one_group_per_invocation_with_bounded_concurrency(msk: Synthesized) -> None:
    _, template = nested(msk)
    (mapping,) = template.find_resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    queues = {key: r["Properties"] for key, r in template.find_resources("AWS::SQS::Queue").items()}
    (work,) = [q for q in queues.values() if "RedrivePolicy" in q]
    assert work["VisibilityTimeout"] == 5400  # six times the worker's 15 minutes, as AWS asks
    assert work["RedrivePolicy"]["maxReceiveCount"] == 3
    assert all(q.get("SqsManagedSseEnabled") for q in queues.values())
    worker = functions(template)["compaction_worker.lambda_handler"]
    assert (worker["Timeout"], worker["MemorySize"]) == (900, 3008)


def test_roles_are_least_privilege(msk: Synthesized) -> None:
    _, template = nested(msk)
    planner = role_statements(template, "PlannerRole")
    worker = role_statements(template, "WorkerRole")
    audit = role_statements(template, "AuditRole")
    assert actions(planner) == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:ListBucket", "sqs:SendMessage"}
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= actions(worker)
    assert "s3:DeleteObject" not in actions(audit)
    assert "s3:PutObject" not in actions(planner)
    for statement in worker + audit:
        for resource in as_list(statement["Resource"]):
            assert resource != "*", statement
    puts = [s for s in audit if "s3:PutObject" in as_list(s["Action"])]
    assert [resource["Fn::Join"][1][-1] for s in puts for resource in as_list(s["Resource"])] == [
        "/archiver-state/audit/*"
    ]
    deletes = [s for s in worker if "s3:DeleteObject" in as_list(s["Action"])]
    assert [resource["Fn::Join"][1][-1] for s in deletes for resource in as_list(s["Resource"])] == ["/topics/*"]
    listing = [s for s in worker if "s3:ListBucket" in as_list(s["Action"])]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["topics/*"]}}


def test_kms_bucket_key_is_granted_through_s3_only(msk: Synthesized, local: Synthesized) -> None:
    _, template = nested(msk)
    kms = [s for s in role_statements(template, "WorkerRole") if "kms:Decrypt" in as_list(s["Action"])]
    assert kms[0]["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1][0] == "s3."
    _, plain = nested(local)  # SSE-S3: no key, no KMS statement
    assert not [s for s in role_statements(plain, "WorkerRole") if "kms:Decrypt" in as_list(s["Action"])]


def test_the_handlers_environment_round_trips_through_maintenance_settings(msk: Synthesized) -> None:
    maintenance, template = nested(msk)
    for properties in functions(template).values():
        variables = properties["Environment"]["Variables"]
        resolved = {name: value for name, value in variables.items() if isinstance(value, str)}
        assert resolved["ARCHIVE_PREFIX"] == "topics/"
        assert resolved["COMPACTION_TARGET_BYTES"] == str(128 * 1024 * 1024)
        assert resolved["COMPACTION_MIN_AGE_SECONDS"] == "7200"
        settings = MaintenanceSettings.from_env({**resolved, "ARCHIVE_BUCKET": "archive-bucket"})
        assert settings.target_bytes == maintenance.settings.target_bytes


def test_maintenance_settings_reject_what_would_break(synth: Synth) -> None:
    from archiver.errors import SettingsError

    with pytest.raises(SettingsError, match="AUDIT_STATE_PREFIX"):
        MaintenanceSettings(archive_bucket="b-b-b", archive_prefix="topics/", audit_state_prefix="topics/state/")
    with pytest.raises(SettingsError, match="COMPACTION_TARGET_BYTES"):
        MaintenanceSettings(archive_bucket="b-b-b", target_bytes=10)


def test_configuration_turns_parts_off_and_tunes_them(synth: Synth) -> None:
    data = with_changes(
        example("local"),
        {
            "maintenance.compaction.enabled": False,
            "maintenance.audit.schedule": "cron(15 * * * ? *)",
            "maintenance.audit.freshnessAlarmMinutes": 90,
        },
    )
    maintenance, template = nested(synth(data, with_event_source=False))
    assert set(functions(template)) == {"audit.lambda_handler"}
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "cron(15 * * * ? *)"
    assert len([name for name in maintenance.alarms if name.startswith("ArchiveStale")]) == 1
    assert "CompactionWorkFailed" not in maintenance.alarms

    both_off = with_changes(
        example("local"), {"maintenance.compaction.enabled": False, "maintenance.audit.enabled": False}
    )
    assert synth(both_off, with_event_source=False).stack.maintenance is None


def test_bad_maintenance_settings_fail_synth_naming_the_field() -> None:
    problems = problems_of(
        with_changes(
            example("local"),
            {
                "maintenance.compaction.schedule": "every hour",
                "maintenance.compaction.targetSizeMiB": 6000,
                "maintenance.compaction.maxConcurrency": 1,
                "maintenance.audit.freshnessAlarmMinutes": 1,
                "maintenance.audit.color": "blue",
            },
        )
    )
    assert_problem(problems, "maintenance.compaction.schedule", "rate(1 hour)")
    assert_problem(problems, "maintenance.compaction.targetSizeMiB", "5120")
    assert_problem(problems, "maintenance.compaction.maxConcurrency", "from 2")
    assert_problem(problems, "maintenance.audit.freshnessAlarmMinutes", "from 5")
    assert_problem(problems, "maintenance.audit.color", "not a known field")


def test_every_maintenance_alarm_names_its_runbook_entry(msk: Synthesized) -> None:
    maintenance, template = nested(msk)
    descriptions = {
        resource["Properties"]["AlarmDescription"]
        for resource in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    for name in maintenance.alarms:
        assert any(d.endswith(f"Runbook: docs/operations.md, section Runbook, {name}.") for d in descriptions), name
