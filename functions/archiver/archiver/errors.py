"""Every failure the archiver can name, in one flat module.

Two families matter to the handler:

* ``RecordError`` -- one record cannot be archived (bad base64, missing offset, ...). The record goes to the
  dead-letter queue and the rest of the batch is archived.
* ``InfrastructureError`` -- S3 or SQS failed after the SDK's own retries. The handler raises, the event source
  mapping retries the whole batch and commits no offset.

``EventError`` (the event itself is not a Kafka batch) and ``SettingsError`` (bad configuration) also raise:
nothing can be archived safely, so nothing is reported as done.
"""

from __future__ import annotations


class ArchiverError(Exception):
    """Base class for every error this package raises on purpose."""


class SettingsError(ArchiverError):
    """The function's configuration is invalid. Lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid archiver settings:\n  - " + "\n  - ".join(self.problems))


class EventError(ArchiverError):
    """The invocation event is not a Kafka batch that AWS would send (wrong source, no records, ...)."""


class RecordError(ArchiverError):
    """One record cannot be archived. Carries a short machine-readable reason for the dead-letter message."""

    reason = "invalid-record"


class RecordDecodeError(RecordError):
    """A record's fields are missing, mistyped or not valid base64."""

    reason = "undecodable-record"


class ValueDecodeError(RecordError):
    """A typed topic's value does not decode: bad wire-format header, corrupt Avro body or invalid JSON."""

    reason = "undecodable-value"


class ValueSchemaError(RecordError):
    """A JSON value does not conform to its topic's Avro schema."""

    reason = "non-conforming-value"


class SchemaLookupLimitError(RecordError):
    """A value names a schema id the batch had no registry lookups left for (values/registry_avro.py)."""

    reason = "schema-lookup-limit"


class UnknownSchemaError(RecordError):
    """The schema registry answered that the value's schema id does not exist (HTTP 404, EntityNotFoundException)."""

    reason = "unknown-schema"


class PartitionValueError(RecordError):
    """A value a path segment needs is there but cannot be read as what the segment needs (a time field that holds
    neither epoch milliseconds nor ISO-8601). Absent values go to the NULL partition instead (archiver.partitioning)."""

    reason = "unpartitionable-record"


class ObjectKeyError(ArchiverError):
    """An object key would be invalid for S3 (too long). A configuration problem, so it raises."""


class InfrastructureError(ArchiverError):
    """S3 or SQS failed after the SDK's retries. Raised so the batch is retried and no offset is committed."""


class ArchiveWriteError(InfrastructureError):
    """An archive object could not be written to S3."""


class DeadLetterError(InfrastructureError):
    """A record could not be handed to the dead-letter queue (nor its payload to S3)."""


class SchemaRegistryError(InfrastructureError):
    """The schema registry could not answer (unreachable, 5xx, throttled, denied). Raised so the batch is retried."""
