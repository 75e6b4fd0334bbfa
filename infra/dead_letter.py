"""The two encrypted queues: records the function dead-letters, and batches the event source mapping gives up on.

They are kept apart because they need different remedies. A dead-lettered record carries its payload: fix and
re-archive it from the message. A given-up batch is metadata only (topic, partition, offset range): those records
were never archived and must be re-read from Kafka (``kafka-s3-archiver backfill``) before retention deletes them.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import QUEUE_RETENTION_DAYS
from infra.nag import acknowledge

RETENTION = Duration.days(QUEUE_RETENTION_DAYS)  # SQS's maximum: the longest window to inspect and redrive


class DeadLetterQueue(Construct):
    """An encrypted standard queue, kept 14 days, shaped for redrive; ``purpose`` names its kind of message.

    Standard (not FIFO): Lambda's on-failure destinations cannot be FIFO queues. The queue is encrypted with the
    stack's KMS key when there is one (the same data as the archive), else with SQS-managed keys (no KMS calls).
    A visibility timeout of 5 minutes gives a redrive consumer time to re-archive a record before it reappears.

    Attributes: ``queue``; ``key`` (the KMS key or None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey | None,
        removal_policy: RemovalPolicy,
        purpose: str = "records the archiver could not archive",
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self._sid = construct_id
        self.queue = sqs.Queue(
            self,
            "Queue",
            retention_period=RETENTION,
            visibility_timeout=Duration.minutes(5),
            encryption=sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.SQS_MANAGED,
            encryption_master_key=key,
            data_key_reuse=Duration.hours(1) if key else None,  # fewer KMS calls per message sent
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        acknowledge(
            self.queue,
            "SQS3",
            f"This queue is itself a terminal queue of the archiver ({purpose}); messages are inspected and "
            "handled by an operator, not consumed by a service that could fail them again.",
        )

    def grant_send(self, grantee: iam.IGrantable) -> None:
        """sqs:SendMessage on this queue only (SendMessageBatch is authorised by the same action)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(sid=f"SendTo{self._sid}", actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )
        if self.key is not None:
            # SQS needs both to send to a queue encrypted with a customer managed key (SQS developer guide, "Key
            # management": producers need kms:GenerateDataKey and kms:Decrypt).
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"EncryptFor{self._sid}",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[self.key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"sqs.{self.queue.stack.region}.amazonaws.com"}},
                )
            )
