"""Scheduled: the incremental archive audit (``archive_ops.archive_audit``), from S3 alone, published as metrics per
topic.

Metrics (namespace of the archiver, dimensions ``service`` and ``topic``): GapOffsets, DuplicateOffsets,
ConflictOffsets, PendingCompactions, RedundantObjects, SmallObjects, FreshnessSeconds, ArchivedRecords; plus
AuditRuns and AuditIncomplete (dimension ``service``) so a stopped audit is itself visible.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from archive_ops.archive_audit import ArchiveAuditor
from common import NAMESPACE, SERVICE, client, logger, metrics, seconds_left, settings

s3 = client("s3")
UNITS = {"FreshnessSeconds": MetricUnit.Seconds}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    auditor = ArchiveAuditor(
        s3,
        settings.archive_bucket,
        settings.archive_prefix,
        state_prefix=settings.audit_state_prefix,
        compaction_age=settings.min_age,
        small_object_bytes=settings.target_bytes,
        settle_age=settings.audit_settle_age,
        seconds_left=lambda: seconds_left(context),
        log=logger.info,
    )
    report = auditor.run()
    for topic, values in report.by_topic().items():
        for name, value in values.items():
            with single_metric(
                name=name,
                unit=UNITS.get(name, MetricUnit.Count),
                value=value,
                namespace=NAMESPACE,
                default_dimensions={"service": SERVICE, "topic": topic},
            ):
                pass
    metrics.add_metric(name="AuditRuns", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="AuditIncomplete", unit=MetricUnit.Count, value=int(report.incomplete))
    summary = report.as_dict()
    logger.info("archive audited", extra={"audit": {k: v for k, v in summary.items() if k != "partitions"}})
    return summary
