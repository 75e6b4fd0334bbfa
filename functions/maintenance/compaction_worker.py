"""Compaction work items from the SQS queue: one group (directory + topic + partition) per message.

A group that needs more than one invocation's time is left half done (every step is crash-safe) and queued again.
A merge that does not verify or copies that conflict are reported and counted; an S3 failure fails the message,
which SQS retries and finally moves to the work queue's dead-letter queue (alarmed).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from archive_ops.compact import CompactionReport, Compactor
from archive_ops.maintenance import parse_work_message, work_message
from common import client, logger, metrics, seconds_left, settings

s3 = client("s3")
sqs = client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    totals = CompactionReport()
    for record in event.get("Records", []):
        group = parse_work_message(record["body"])
        compactor = Compactor(s3, settings.compaction(), log=logger.info, seconds_left=lambda: seconds_left(context))
        report = compactor.run_group(group)
        if report.incomplete:
            sqs.send_message(QueueUrl=settings.work_queue_url, MessageBody=work_message(group))
            logger.info("group not finished in this invocation: queued again", extra={"group": list(group)})
        for name in ("merges", "redundant_deleted", "conflicts", "failed", "skipped"):
            getattr(totals, name).extend(getattr(report, name))
        totals.incomplete |= report.incomplete
    record_metrics(totals)
    result = {
        "merges": len(totals.merges),
        "objectsCompacted": sum(merge.inputs for merge in totals.merges),
        "duplicatesRemoved": totals.duplicates_removed,
        "redundantDeleted": len(totals.redundant_deleted),
        "conflicts": [{"offset": c.offset, "keys": c.keys} for c in totals.conflicts],
        "failed": totals.failed,
        "incomplete": totals.incomplete,
    }
    logger.info("compaction done", extra=result)
    return result


def record_metrics(report: CompactionReport) -> None:
    metrics.add_metric(name="CompactionMerges", unit=MetricUnit.Count, value=len(report.merges))
    metrics.add_metric(
        name="ObjectsCompacted", unit=MetricUnit.Count, value=sum(merge.inputs for merge in report.merges)
    )
    metrics.add_metric(name="DuplicatesRemoved", unit=MetricUnit.Count, value=report.duplicates_removed)
    metrics.add_metric(name="RedundantObjectsDeleted", unit=MetricUnit.Count, value=len(report.redundant_deleted))
    metrics.add_metric(name="CompactionConflicts", unit=MetricUnit.Count, value=len(report.conflicts))
    metrics.add_metric(name="CompactionFailures", unit=MetricUnit.Count, value=len(report.failed))
