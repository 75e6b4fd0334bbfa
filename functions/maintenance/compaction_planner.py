"""Scheduled: find the archive groups compaction would change and queue one work item per group.

Decided from one listing of the archive (names and sizes), so planning reads no object. The workers
(``compaction_worker``) take the items from the queue in parallel, each well inside Lambda's 15 minutes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from archive_ops.compact import Compactor
from archive_ops.maintenance import work_message
from common import client, logger, metrics, settings

MAX_BATCH = 10  # SendMessageBatch's limit
s3 = client("s3")
sqs = client("sqs")


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    groups = Compactor(s3, settings.compaction()).groups_with_work()
    queued = 0
    for start in range(0, len(groups), MAX_BATCH):
        entries = [
            {"Id": str(index), "MessageBody": work_message(group)}
            for index, group in enumerate(groups[start : start + MAX_BATCH])
        ]
        response = sqs.send_message_batch(QueueUrl=settings.work_queue_url, Entries=entries)
        if response.get("Failed"):
            # Nothing is lost by failing: the next scheduled run plans the same groups again.
            raise RuntimeError(
                f"the compaction work queue refused {len(response['Failed'])} message(s): {response['Failed']}"
            )
        queued += len(entries)
    metrics.add_metric(name="CompactionGroupsQueued", unit=MetricUnit.Count, value=queued)
    result = {"groupsQueued": queued}
    logger.info("compaction planned", extra=result)
    return result
