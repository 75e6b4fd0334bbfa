"""Run the compaction and the audit the stack deploys, inside LocalStack, as their EventBridge schedules would.

The planner and the audit are invoked through the Lambda API; the planner queues work on the deployed SQS queue,
and LocalStack's SQS event source runs the worker Lambdas through the host executor. ``make demo`` and the e2e
tests use these to show and check the archive's end state.
"""

from __future__ import annotations

import json
import time
from typing import Any

from archive_ops.archive_index import list_archive


class MaintenanceError(RuntimeError):
    """A deployed maintenance function failed, or compaction did not finish in time."""


def invoke(lambda_client: Any, function: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Invoke a deployed function synchronously; its JSON result. Raises ``MaintenanceError`` if it failed."""
    response = lambda_client.invoke(FunctionName=function, Payload=json.dumps(payload or {}).encode())
    body = json.loads(response["Payload"].read() or b"null")
    if "FunctionError" in response or not isinstance(body, dict):
        raise MaintenanceError(f"{function} failed: {str(body)[:500]}")
    return body


def compact(
    *,
    lambda_client: Any,
    sqs: Any,
    s3: Any,
    outputs: dict[str, Any],
    topic: str,
    prefix: str = "topics/",
    timeout: float = 180,
) -> tuple[dict[str, Any], list[str]]:
    """Run the deployed planner, then wait until its work queue is drained and every object of ``topic`` has a
    compacted (range) name. Returns the planner's result and the topic's keys afterwards."""
    planned = invoke(lambda_client, outputs["compaction_planner"])
    deadline = time.monotonic() + timeout
    waiting = -1
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=outputs["compaction_queue_url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = sum(int(value) for value in attributes.values())
        objects = list_archive(s3, outputs["bucket"], prefix, topic=topic)
        if not waiting and objects and all(item.ref.last_offset is not None for item in objects):
            return planned, [item.key for item in objects]
        time.sleep(1)
    raise MaintenanceError(f"compaction of {topic} did not finish in {timeout:.0f} s ({waiting} work item(s) left)")


def audit(*, lambda_client: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    """Run the deployed audit once; its findings (``archive_ops.archive_audit.AuditReport.as_dict``)."""
    return invoke(lambda_client, outputs["audit_function"])
