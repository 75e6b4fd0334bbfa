"""The deployment's configuration: one JSON file -> typed, frozen models, validated at synth time.

The schema is declared once, here, as pydantic models: validation, the JSON Schema for editors (``config/schema.json``,
``python -m infra.config schema``) and the field tables of docs/configuration.md (checked by a test) all come from
it. ``load_config(path)`` reads a file and ``parse_config(data)`` checks *every* field before raising ``ConfigError``,
so a user sees all problems at once, each naming its field once by its JSON path (``eventSource.batchSize``) with
what it accepts. Checks that span fields are validators of the model that holds those fields; checks that span
sections run on every section that is valid. The ``archive`` section is checked by the function's own
``archiver.settings.Settings``: the same rules the Lambda applies at cold start.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from archiver.decoding import MAX_OFFSET, MAX_PARTITION
from archiver.errors import SettingsError
from archiver.keys import MAX_KEY_BYTES, archive_name
from archiver.layout import (
    SEGMENT_KINDS,
    FieldSegment,
    HeaderSegment,
    KeySegment,
    LayoutError,
    PartitionSegment,
    TimeSegment,
    segments_json,
)
from archiver.layout import Segment as LayoutSegment
from archiver.partitioning import encode_topic, longest_path
from archiver.settings import (
    DEFAULT_CODEC,
    DEFAULT_PREFIX,
    DEFAULT_TIME_PATTERN,
    ENV_NAMES,
    UNREADABLE_STORAGE_CLASSES,
    Codec,
    Partitioner,
    Settings,
    StorageClass,
)
from archiver.values.config import KAFKA_TOPIC_NAME, ValueFormats, canonical_value_formats
from infra.glue_names import column_problems
from infra.glue_names import table_name_for as table_name_for  # re-exported

SourceKind = Literal["msk", "self-managed"]
MskAuth = Literal["iam", "sasl-scram-512"]
SelfManagedAuth = Literal["sasl-scram-256", "sasl-scram-512", "plain", "mtls", "none"]
StartingPosition = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
OnFailure = Literal["queue", "bucket", "none"]
EsmMetric = Literal["EventCount", "ErrorCount", "KafkaMetrics"]
SystemLogLevel = Literal["WARN", "INFO", "DEBUG", "off"]
Architecture = Literal["arm64", "x86_64"]
BucketEncryption = Literal["kms", "s3"]
RemovalPolicyName = Literal["retain", "destroy"]
StorageClassName = Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]

SCHEMA_ID = "https://github.com/kafka-s3-archiver/kafka-s3-archiver/config/schema.json"
# Where Lambda writes a mapping's failed batches when the on-failure destination is the bucket (aws/lambda/<uuid>/).
ON_FAILURE_PREFIX = "aws/lambda/"
# AWS limits for Kafka event source mappings (AWS Lambda API reference, CreateEventSourceMapping).
MAX_BATCH_SIZE = 10_000
MAX_BATCHING_WINDOW_SECONDS = 300
MAX_RETRY_ATTEMPTS = 10_000
MIN_RECORD_AGE_SECONDS, MAX_RECORD_AGE_SECONDS = 60, 604_800
MIN_POLLERS, MAX_MINIMUM_POLLERS, MAX_MAXIMUM_POLLERS = 1, 200, 2000
MAX_CONSUMER_GROUP_ID_LENGTH = 200
# AWS::Lambda::EventSourceMapping's resource schema (CloudFormation registry, as bundled by cfn-lint 1.58):
# Endpoints.KafkaBootstrapServers maxItems 10; SourceAccessConfigurations maxItems 29, each URI maxLength 200;
# Topics items pattern ^[^.]([a-zA-Z0-9\-_.]+) (so at least 2 characters, not starting with '.'), maxLength 249.
MAX_BOOTSTRAP_SERVERS = 10
MAX_SOURCE_ACCESS_CONFIGURATIONS = 29
MAX_SOURCE_ACCESS_URI_LENGTH = 200
# Lambda developer guide ("Using Lambda with Amazon MSK"): Kafka event source mappings support functions with a
# timeout of at most 14 minutes.
MAX_KAFKA_TIMEOUT_SECONDS = 840
# MSK SASL/SCRAM (Amazon MSK developer guide, "Sign-in credentials authentication with AWS Secrets Manager"): the
# secret's name must start with AmazonMSK_ and it must be encrypted with a customer managed KMS key.
MSK_SCRAM_SECRET_PREFIX = "AmazonMSK_"  # noqa: S105 (a secret name prefix, not a secret)
# SQS keeps a message at most 14 days: the dead-letter age alarm must fire well before that.
QUEUE_RETENTION_DAYS = 14
# Lambda's memory range and timeout cap.
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 128, 10_240
MAX_TIMEOUT_SECONDS = 900
# S3 moves objects to the Standard-IA / One Zone-IA classes only after 30 days.
MIN_IA_TRANSITION_DAYS = 30
# Lambda allows 4 KB for all environment variables together; VALUE_FORMATS, PARTITION_SEGMENTS and OBJECT_TAGS may
# use most of it together, the rest (bucket, queue URL, prefix, pattern, Powertools) stays well under 1 KB.
MAX_VALUE_FORMATS_BYTES = 3072
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# The catalog projects Kafka partition numbers 0..kafkaPartitions-1; more would make Athena plan that many locations
# per other partition value of an unfiltered query.
MAX_PROJECTED_KAFKA_PARTITIONS = 10_000
# A merged object is one PUT, at most 5 GiB; and a worker holds one merge in memory.
MAX_COMPACTION_TARGET_MIB = 5 * 1024

_MSK_CLUSTER_ARN = (
    r"^arn:(aws[a-z-]*):kafka:([a-z]{2}(-[a-z]+)+-\d):(\d{12}):cluster/([A-Za-z0-9-]{1,64})/([0-9a-z-]+)$"
)
_SECRET_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"  # noqa: S105 (a pattern, not a secret)
_KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$"
_SNS_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
# host:port, the host an RFC 1123 name (labels of 1-63 letters, digits and '-', not starting or ending with '-')
# or an IPv4 address; the same shape as the mapping schema's KafkaBootstrapServers pattern.
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_BOOTSTRAP_SERVER = rf"^(?=[^:]{{1,253}}:)(?:{_HOST_LABEL}\.)*{_HOST_LABEL}:(\d{{1,5}})$"
# The mapping's Topics pattern: no leading '.', at least 2 characters (the rest is Kafka's own rule).
_ESM_TOPIC = re.compile(r"^[^.][A-Za-z0-9._-]+$")
_CONSUMER_GROUP = r"^[A-Za-z0-9/*:_+=.@-]+$"  # AWS's pattern for the ESM's ConsumerGroupId
_SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
_SECURITY_GROUP_ID = r"^sg-[0-9a-f]{8,17}$"
_BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_STACK_NAME = r"^[A-Za-z][A-Za-z0-9-]{0,127}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_ACCOUNT = r"^\d{12}$"
# Glue accepts more, but Athena reads only databases of lower-case letters, digits and underscores.
_DATABASE_NAME = r"^[a-z0-9_]{1,255}$"
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
# EventBridge schedule expressions: rate(1 minute|N minutes|hours|days) or cron(6 fields).
_SCHEDULE = r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$"
_SCHEDULE_HINT = "an EventBridge schedule expression such as 'rate(1 hour)', 'rate(30 minutes)' or 'cron(15 * * * ? *)'"
# Literal stand-ins for the deploy-time bucket and queue, to validate the archive settings at parse time.
_STAND_IN_BUCKET = "archive-bucket"
_STAND_IN_QUEUE_URL = "https://sqs.invalid/queue"
_IGNORED_KEYS = ("$schema", "$comment", "_comment")


class ConfigError(Exception):
    """The deployment configuration is invalid. ``problems`` lists every problem, each naming its field."""

    def __init__(self, problems: list[str], *, source: str = "configuration") -> None:
        self.problems = list(problems)
        super().__init__(f"invalid {source}:\n  - " + "\n  - ".join(self.problems))


class Problems(ValueError):
    """Several problems of one section at once, each ``(field, message)`` relative to the section."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in items))
        self.items = items


class WhenEmpty:
    """Annotated metadata: the message for an empty list (default: 'is required: a non-empty list of <hint>')."""

    def __init__(self, message: str) -> None:
        self.message = message


def _text(pattern: str, hint: str, **extra: Any) -> Any:
    """A string field matching ``pattern``; ``hint`` (the description) says what it must be."""
    return Field(pattern=pattern, description=hint, **extra)


class _Model(BaseModel):
    """JSON types only (StrictInt, StrictBool, StrictStr: no "100" for 100), frozen, unknown keys rejected;
    ``null`` means "not set"."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        extra="forbid",
        frozen=True,
        regex_engine="python-re",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_and_comments(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None and key not in _IGNORED_KEYS}
        return data

    def _problems(self, items: list[tuple[str, str]]) -> None:
        if items:
            raise Problems(items)


def _no_repeats[T](values: tuple[T, ...] | None) -> tuple[T, ...] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError(f"must not repeat entries; got {list(values)}")
    return values


# --------------------------------------------------------------------------------------------------- the sources


class MskSource(_Model):
    """An Amazon MSK cluster, read with IAM auth (default) or SASL/SCRAM-512 (secret)."""

    cluster_arn: StrictStr = _text(
        _MSK_CLUSTER_ARN, "an MSK cluster ARN, arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>"
    )
    auth: MskAuth = "iam"
    secret_arn: StrictStr | None = _text(_SECRET_ARN, "a Secrets Manager secret ARN", default=None)
    secret_kms_key_arn: StrictStr | None = _text(_KMS_KEY_ARN, "a KMS key ARN", default=None)
    cluster_security_group_id: StrictStr | None = _text(_SECURITY_GROUP_ID, "a security group id, sg-...", default=None)

    @model_validator(mode="after")
    def _auth_needs(self) -> MskSource:
        problems: list[tuple[str, str]] = []
        if self.auth == "sasl-scram-512":
            if self.secret_arn is None:
                problems.append(
                    (
                        "secretArn",
                        "is required when auth is 'sasl-scram-512' (the AmazonMSK_ secret associated with the cluster)",
                    )
                )
            elif not self.secret_arn.split(":secret:", 1)[1].startswith(MSK_SCRAM_SECRET_PREFIX):
                problems.append(
                    (
                        "secretArn",
                        f"must name a secret whose name starts with {MSK_SCRAM_SECRET_PREFIX!r}: MSK associates only "
                        f"such secrets with a cluster for SASL/SCRAM; got {self.secret_arn!r}",
                    )
                )
            if self.secret_kms_key_arn is None:
                problems.append(
                    (
                        "secretKmsKeyArn",
                        "is required when auth is 'sasl-scram-512': MSK accepts only SCRAM secrets encrypted with a "
                        "customer managed KMS key (not the default aws/secretsmanager key), and the role must decrypt "
                        "it",
                    )
                )
        else:
            if self.secret_arn is not None:
                problems.append(("secretArn", "only applies to auth 'sasl-scram-512'; IAM auth uses no secret"))
            if self.secret_kms_key_arn is not None:
                problems.append(
                    ("secretKmsKeyArn", "only applies to auth 'sasl-scram-512' (the key that encrypts the secret)")
                )
        problems += _uri_problems({"secretArn": self.secret_arn})
        self._problems(problems)
        return self

    @property
    def cluster_parts(self) -> tuple[str, str, str, str, str]:
        """(partition, region, account, cluster name, cluster uuid) of a validated ARN."""
        match = re.match(_MSK_CLUSTER_ARN, self.cluster_arn)
        assert match is not None, "cluster_arn was validated by parse_config"
        return match.group(1), match.group(2), match.group(4), match.group(5), match.group(6)


class VpcPlacement(_Model):
    """Where the event source mapping reaches self-managed brokers that are only reachable inside a VPC."""

    subnet_ids: Annotated[
        tuple[Annotated[StrictStr, Field(pattern=_SUBNET_ID)], ...],
        Field(min_length=1, description="subnet ids (subnet-...)"),
        WhenEmpty("is required with vpc: the subnets the mapping reaches the brokers from"),
    ]
    security_group_ids: Annotated[
        tuple[Annotated[StrictStr, Field(pattern=_SECURITY_GROUP_ID)], ...],
        Field(min_length=1, description="security group ids (sg-...)"),
        WhenEmpty("is required with vpc: the security groups for the mapping's interfaces"),
    ]

    _unique = field_validator("subnet_ids", "security_group_ids")(_no_repeats)


class SelfManagedSource(_Model):
    """A self-managed Apache Kafka cluster, reached by bootstrap servers."""

    bootstrap_servers: Annotated[
        tuple[Annotated[StrictStr, Field(pattern=_BOOTSTRAP_SERVER)], ...],
        Field(
            min_length=1,
            description="host:port with an RFC 1123 host name (labels of A-Z a-z 0-9 and '-', not starting or "
            "ending with '-')",
        ),
    ]
    auth: SelfManagedAuth = "sasl-scram-512"
    secret_arn: StrictStr | None = _text(_SECRET_ARN, "a Secrets Manager secret ARN", default=None)
    root_ca_secret_arn: StrictStr | None = _text(_SECRET_ARN, "a Secrets Manager secret ARN", default=None)
    secret_kms_key_arn: StrictStr | None = _text(_KMS_KEY_ARN, "a KMS key ARN", default=None)
    vpc: VpcPlacement | None = None

    _unique = field_validator("bootstrap_servers")(_no_repeats)

    @model_validator(mode="after")
    def _consistent(self) -> SelfManagedSource:
        problems: list[tuple[str, str]] = []
        for index, server in enumerate(self.bootstrap_servers):
            if not 1 <= int(server.rsplit(":", 1)[1]) <= 65535:
                problems.append((f"bootstrapServers[{index}]", f"must have a port from 1 to 65535; got {server!r}"))
        if len(self.bootstrap_servers) > MAX_BOOTSTRAP_SERVERS:
            problems.append(
                (
                    "bootstrapServers",
                    f"has {len(self.bootstrap_servers)} servers; AWS Lambda accepts at most {MAX_BOOTSTRAP_SERVERS} "
                    "(a few per cluster are enough to bootstrap)",
                )
            )
        if self.auth != "none" and self.secret_arn is None:
            what = "the client certificate and key" if self.auth == "mtls" else "the username and password"
            problems.append(
                ("secretArn", f"is required when auth is {self.auth!r} (a Secrets Manager secret with {what})")
            )
        if self.auth == "none" and self.secret_arn is not None:
            problems.append(("secretArn", "must not be set when auth is 'none'"))
        problems += _uri_problems({"secretArn": self.secret_arn, "rootCaSecretArn": self.root_ca_secret_arn})
        entries = {
            "auth secret": 1 if self.secret_arn else 0,
            "root CA secret": 1 if self.root_ca_secret_arn else 0,
            "subnets": len(self.vpc.subnet_ids) if self.vpc else 0,
            "security groups": len(self.vpc.security_group_ids) if self.vpc else 0,
        }
        if sum(entries.values()) > MAX_SOURCE_ACCESS_CONFIGURATIONS:
            counted = ", ".join(f"{count} {what}" for what, count in entries.items() if count)
            problems.append(
                (
                    "vpc",
                    f"makes {sum(entries.values())} source-access entries ({counted}); AWS Lambda accepts at most "
                    f"{MAX_SOURCE_ACCESS_CONFIGURATIONS} per event source mapping",
                )
            )
        self._problems(problems)
        return self


def _uri_problems(uris: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """Secrets the mapping names in SourceAccessConfigurations: AWS limits each URI to 200 characters."""
    return [
        (
            key,
            f"is {len(uri)} characters; an event source mapping accepts secret ARNs of at most "
            f"{MAX_SOURCE_ACCESS_URI_LENGTH} (use a shorter secret name)",
        )
        for key, uri in uris.items()
        if uri and len(uri) > MAX_SOURCE_ACCESS_URI_LENGTH
    ]


# --------------------------------------------------------------------------------------------------- event source


class ProvisionedPollers(_Model):
    minimum: Annotated[StrictInt, Field(ge=MIN_POLLERS, le=MAX_MINIMUM_POLLERS)] = 1
    maximum: Annotated[StrictInt, Field(ge=MIN_POLLERS, le=MAX_MAXIMUM_POLLERS)] = 200

    @model_validator(mode="after")
    def _ordered(self) -> ProvisionedPollers:
        if self.minimum > self.maximum:
            self._problems([("minimum", f"must not exceed maximum ({self.maximum}); got {self.minimum}")])
        return self


class EventSourceConfig(_Model):
    """The Kafka event source mapping(s): one per topic, because an ESM reads exactly one topic."""

    topics: Annotated[
        tuple[Annotated[StrictStr, Field(pattern=KAFKA_TOPIC_NAME.pattern)], ...],
        Field(min_length=1, description="Kafka topic names (1-249 of A-Z a-z 0-9 . _ -)"),
        WhenEmpty("is required: a non-empty list of topic names (one event source mapping per topic)"),
    ]
    consumer_group_id: StrictStr = _text(_CONSUMER_GROUP, "a consumer group id of A-Z a-z 0-9 and / * : _ + = . @ -")
    batch_size: Annotated[StrictInt, Field(ge=1, le=MAX_BATCH_SIZE)] = 100
    batching_window_seconds: Annotated[StrictInt, Field(ge=0, le=MAX_BATCHING_WINDOW_SECONDS)] | None = None
    starting_position: StartingPosition = "TRIM_HORIZON"
    starting_position_timestamp: Annotated[StrictInt, Field(ge=1)] | None = None
    enabled: StrictBool = True
    provisioned_pollers: ProvisionedPollers | None = None
    retry_attempts: Annotated[StrictInt, Field(ge=-1, le=MAX_RETRY_ATTEMPTS)] | None = None
    bisect_batch_on_error: StrictBool = False
    max_record_age_seconds: Annotated[StrictInt, Field(ge=-1, le=MAX_RECORD_AGE_SECONDS)] | None = None
    on_failure: OnFailure = "queue"
    # The mapping's own metrics and system logs: AWS offers both on Kafka mappings only in provisioned mode, so they
    # default to all metrics and WARN logs there, and to none otherwise.
    metrics: tuple[EsmMetric, ...] = ()
    system_log_level: SystemLogLevel = "off"

    _unique = field_validator("topics", "metrics")(_no_repeats)

    @model_validator(mode="before")
    @classmethod
    def _provisioned_defaults(cls, data: Any) -> Any:
        """Mapping metrics and logs default on in provisioned mode (AWS offers them only then)."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        provisioned = data.get("provisionedPollers", data.get("provisioned_pollers")) is not None
        if provisioned:
            data.setdefault("metrics", list(get_args(EsmMetric)))
            data.setdefault("systemLogLevel", "WARN")
        return data

    @field_validator("on_failure", mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        # The old value, renamed when given-up batches got their own queue: say what it is now.
        if value == "dead-letter-queue":
            raise ValueError(
                "'dead-letter-queue' is now 'queue': batches the mapping gives up on go to their own on-failure queue, "
                "apart from the records the function dead-letters"
            )
        return value

    @field_validator("metrics")
    @classmethod
    def _in_order(cls, metrics: tuple[EsmMetric, ...]) -> tuple[EsmMetric, ...]:
        return tuple(metric for metric in get_args(EsmMetric) if metric in metrics)

    @model_validator(mode="after")
    def _mapping_rules(self) -> EventSourceConfig:
        problems: list[tuple[str, str]] = []
        for index, topic in enumerate(self.topics):
            if not _ESM_TOPIC.match(topic):
                # Kafka accepts these, but AWS::Lambda::EventSourceMapping's Topics pattern does not.
                problems.append(
                    (
                        f"topics[{index}]",
                        "must have at least 2 characters and not start with '.' (AWS Lambda's event source mapping "
                        f"rejects it); got {topic!r}",
                    )
                )
        longest = max((len(t) for t in self.topics), default=0)
        full = len(self.consumer_group_id) if len(self.topics) <= 1 else len(self.consumer_group_id) + 1 + longest
        if full > MAX_CONSUMER_GROUP_ID_LENGTH:
            problems.append(
                ("consumerGroupId", f"makes a group id of {full} characters; AWS allows {MAX_CONSUMER_GROUP_ID_LENGTH}")
            )
        position_timestamp = self.starting_position_timestamp
        if self.starting_position == "AT_TIMESTAMP" and position_timestamp is None:
            problems.append(
                ("startingPositionTimestamp", "is required when startingPosition is 'AT_TIMESTAMP' (Unix seconds)")
            )
        if self.starting_position != "AT_TIMESTAMP" and position_timestamp is not None:
            problems.append(("startingPositionTimestamp", "only applies when startingPosition is 'AT_TIMESTAMP'"))
        age = self.max_record_age_seconds
        if age is not None and age != -1 and age < MIN_RECORD_AGE_SECONDS:
            problems.append(
                ("maxRecordAgeSeconds", f"must be -1 or from {MIN_RECORD_AGE_SECONDS} to {MAX_RECORD_AGE_SECONDS}")
            )
        if self.provisioned_pollers is None:
            # AWS accepts Kafka error-handling controls, metrics and logs only on mappings in provisioned mode.
            for key, is_set in (
                ("retryAttempts", self.retry_attempts is not None),
                ("bisectBatchOnError", self.bisect_batch_on_error),
                ("maxRecordAgeSeconds", self.max_record_age_seconds is not None),
            ):
                if is_set:
                    problems.append(
                        (
                            key,
                            "needs provisioned mode: AWS allows it on Kafka mappings only with provisionedPollers set",
                        )
                    )
            for key, is_set in (("metrics", bool(self.metrics)), ("systemLogLevel", self.system_log_level != "off")):
                if is_set:
                    problems.append(
                        (
                            key,
                            "needs provisioned mode: AWS offers a Kafka mapping's metrics and logs only with "
                            "provisionedPollers set",
                        )
                    )
        self._problems(problems)
        return self

    def consumer_group_for(self, topic: str) -> str:
        """AWS requires a consumer group per mapping, so several topics get ``<group>-<topic>``."""
        return self.consumer_group_id if len(self.topics) == 1 else f"{self.consumer_group_id}-{topic}"


# --------------------------------------------------------------------------------------------------- archive


PathSegment = FieldSegment | HeaderSegment | KeySegment | PartitionSegment | TimeSegment


class ArchiveConfig(_Model):
    """Maps onto the function's ``archiver.settings.Settings`` (minus bucket and queue).

    ``value_formats`` is the ``VALUE_FORMATS`` object as written in the config (topic -> format settings); the
    function's own parser checks it. ``registry_auth_secret_kms_key_arn`` is infra only: the key that encrypts the
    registry auth secrets, so the role may decrypt them.
    """

    prefix: StrictStr = DEFAULT_PREFIX
    partitioner: Partitioner = "default"
    time_pattern: StrictStr = DEFAULT_TIME_PATTERN
    timezone: StrictStr = "UTC"
    partition_field: StrictStr | None = None
    # The segments of partitioner "segments": the function's own segment types (archiver.layout), which check
    # themselves as pydantic builds them.
    partition_segments: tuple[Annotated[PathSegment, Field(discriminator="kind")], ...] | None = Field(
        default=None, description="path segments in order"
    )
    codec: Codec = DEFAULT_CODEC
    storage_class: StorageClass = "STANDARD"
    object_tags: dict[str, StrictStr] = Field(default_factory=dict, description="tag keys to values")
    value_formats: dict[str, Any] = Field(default_factory=dict, description="topic -> format settings")
    registry_auth_secret_kms_key_arn: StrictStr | None = _text(_KMS_KEY_ARN, "a KMS key ARN", default=None)

    @field_validator("storage_class", mode="before")
    @classmethod
    def _readable_class(cls, value: Any) -> Any:
        if value in UNREADABLE_STORAGE_CLASSES:
            raise ValueError(
                f"{value} {UNREADABLE_STORAGE_CLASSES[value]}: the archive would be unreadable to Athena, verify, "
                "replay and compaction, and a retried batch could not check what an object holds; use a lifecycle "
                "transition (bucket.lifecycle) to move old objects there"
            )
        return value

    @model_validator(mode="after")
    def _the_functions_rules(self) -> ArchiveConfig:
        problems: list[tuple[str, str]] = []
        if self.prefix.startswith(ON_FAILURE_PREFIX):
            problems.append(
                ("prefix", f"must not start with {ON_FAILURE_PREFIX!r}: Lambda writes on-failure records there")
            )
        sizes = {
            "valueFormats": len(canonical_value_formats(self.value_formats)) if self.value_formats else 0,
            "partitionSegments": len(segments_json(self.partition_segments)) if self.partition_segments else 0,
            "objectTags": len(_tags_json(self.object_tags).encode()) if self.object_tags else 0,
        }
        if sum(sizes.values()) > MAX_VALUE_FORMATS_BYTES:
            largest = max(sizes, key=lambda name: sizes[name])
            shown = ", ".join(f"{name} {size}" for name, size in sizes.items() if size)
            problems.append(
                (
                    largest,
                    f"makes the function's environment too large ({shown} bytes); Lambda allows 4 KB for all "
                    f"environment variables together, so keep these three under {MAX_VALUE_FORMATS_BYTES} bytes",
                )
            )
        if not problems:
            try:
                # The function's own validation, with literal stand-ins for the deploy-time bucket and queue.
                self.settings(bucket_name=_STAND_IN_BUCKET, dead_letter_queue_url=_STAND_IN_QUEUE_URL)
            except SettingsError as error:
                problems += [_settings_problem(problem) for problem in error.problems]
        self._problems(problems)
        return self

    def settings(self, *, bucket_name: str, dead_letter_queue_url: str) -> Settings:
        """The function's Settings for this archive; raises ``SettingsError`` exactly as the Lambda would.

        ``value_schemas_dir`` stays unset: the function's default is the value_schemas/ folder of its own asset.
        """
        return Settings(
            archive_bucket=bucket_name,
            dead_letter_queue_url=dead_letter_queue_url,
            archive_prefix=self.prefix,
            partitioner=self.partitioner,
            time_pattern=self.time_pattern,
            timezone=self.timezone,
            partition_field=self.partition_field,
            partition_segments=segments_json(self.partition_segments) if self.partition_segments is not None else None,
            codec=self.codec,
            storage_class=self.storage_class,
            object_tags=_tags_json(self.object_tags) if self.object_tags else None,
            value_formats=canonical_value_formats(self.value_formats) if self.value_formats else None,
        )

    def segments(self) -> tuple[LayoutSegment, ...]:
        """The layout's segments: ``partitionSegments``, or the preset ``partitioner`` names."""
        return self.settings(bucket_name=_STAND_IN_BUCKET, dead_letter_queue_url=_STAND_IN_QUEUE_URL).segments

    def typed_topics(self) -> ValueFormats:
        """The parsed format of every typed (not ``raw``) topic, with its ``.avsc`` files loaded."""
        return self.settings(bucket_name=_STAND_IN_BUCKET, dead_letter_queue_url=_STAND_IN_QUEUE_URL).typed_topics


# Settings' attribute -> the archive field that sets it (Settings names problems "ENV_NAME (attribute) ...").
_ARCHIVE_FIELDS = {
    "archive_prefix": "prefix",
    "partitioner": "partitioner",
    "time_pattern": "timePattern",
    "timezone": "timezone",
    "partition_field": "partitionField",
    "partition_segments": "partitionSegments",
    "codec": "codec",
    "storage_class": "storageClass",
    "object_tags": "objectTags",
    "value_formats": "valueFormats",
}


def _tags_json(tags: Mapping[str, str]) -> str:
    return json.dumps(dict(tags), separators=(",", ":"), ensure_ascii=False)


def _settings_problem(problem: str) -> tuple[str, str]:
    """A Settings problem, named once by its config field, environment variable names replaced by config names."""
    match = re.match(r"^[A-Z_]+ \((\w+)\) (.*)$", problem, re.DOTALL)
    name, message = (_ARCHIVE_FIELDS.get(match.group(1), ""), match.group(2)) if match else ("", problem)
    item = re.match(r"^(\[\d+\][\w.]*): (.*)$", message, re.DOTALL)
    if item:  # a problem of one segment: named by its path, e.g. partitionSegments[1].field
        name, message = f"{name}{item.group(1)}", item.group(2)
    for attribute, field_name in _ARCHIVE_FIELDS.items():
        message = message.replace(ENV_NAMES[attribute], field_name)
    return name, message


class CatalogConfig(_Model):
    """A Glue database with one Athena table per archived topic (``infra.catalog.ArchiveCatalog``)."""

    database_name: StrictStr = _text(_DATABASE_NAME, "a Glue database name of 1-255 a-z 0-9 _ (Athena's rule)")
    kafka_partitions: Annotated[StrictInt, Field(ge=1, le=MAX_PROJECTED_KAFKA_PARTITIONS)] = 64


# --------------------------------------------------------------------------------------------------- bucket


class LifecycleTransition(_Model):
    storage_class: StorageClassName
    after_days: Annotated[StrictInt, Field(ge=0, description="days after creation")]

    @model_validator(mode="after")
    def _s3_rule(self) -> LifecycleTransition:
        if self.storage_class in ("STANDARD_IA", "ONEZONE_IA") and self.after_days < MIN_IA_TRANSITION_DAYS:
            self._problems(
                [
                    (
                        "afterDays",
                        f"must be at least {MIN_IA_TRANSITION_DAYS} for {self.storage_class} (an S3 rule); "
                        f"got {self.after_days}",
                    )
                ]
            )
        return self


class LifecycleConfig(_Model):
    transitions: tuple[LifecycleTransition, ...] = ()
    expiration_days: Annotated[StrictInt, Field(ge=1)] | None = None
    dead_letter_expiration_days: Annotated[StrictInt, Field(ge=1)] | None = 30
    noncurrent_version_expiration_days: Annotated[StrictInt, Field(ge=1)] | None = 30

    @model_validator(mode="after")
    def _expires_last(self) -> LifecycleConfig:
        expiration = self.expiration_days
        self._problems(
            [
                (
                    "expirationDays",
                    f"must be later than every transition; {t.storage_class} is at day {t.after_days}",
                )
                for t in self.transitions
                if expiration is not None and t.after_days >= expiration
            ]
        )
        return self


class BucketConfig(_Model):
    """Create the archive bucket (default), or use an existing one by name - never both."""

    existing_bucket_name: StrictStr | None = _text(_BUCKET_NAME, "an S3 bucket name", default=None)
    existing_bucket_kms_key_arn: StrictStr | None = _text(_KMS_KEY_ARN, "a KMS key ARN", default=None)
    encryption: BucketEncryption = "kms"
    versioned: StrictBool = False
    removal_policy: RemovalPolicyName = "retain"
    server_access_logs_bucket_name: StrictStr | None = _text(_BUCKET_NAME, "an S3 bucket name", default=None)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)

    @model_validator(mode="after")
    def _existing_or_created(self) -> BucketConfig:
        problems: list[tuple[str, str]] = []
        if self.existing_bucket_kms_key_arn and not self.existing_bucket_name:
            problems.append(
                ("existingBucketKmsKeyArn", "only applies with existingBucketName (the key that bucket encrypts with)")
            )
        if self.existing_bucket_name:
            # An existing bucket keeps its own settings: the stack neither creates nor changes it.
            for attribute in (
                "encryption",
                "versioned",
                "removal_policy",
                "server_access_logs_bucket_name",
                "lifecycle",
            ):
                if attribute in self.model_fields_set:
                    problems.append(
                        (
                            to_camel(attribute),
                            "only applies to a bucket the stack creates; remove it or remove existingBucketName",
                        )
                    )
        self._problems(problems)
        return self

    @property
    def creates_bucket(self) -> bool:
        return self.existing_bucket_name is None


# --------------------------------------------------------------------------------------------------- function


class FunctionConfig(_Model):
    architecture: Architecture = "arm64"
    memory_mib: Annotated[StrictInt, Field(alias="memoryMiB", ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB)] = 1024
    # MAX_TIMEOUT_SECONDS is Lambda's cap, but a function behind a Kafka mapping may run at most 14 minutes.
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=MAX_KAFKA_TIMEOUT_SECONDS)] = 120
    log_retention_days: Annotated[StrictInt, Field(ge=1, json_schema_extra={"enum": list(LOG_RETENTION_DAYS)})] = 30
    tracing: StrictBool = False
    reserved_concurrency: Annotated[StrictInt, Field(ge=1)] | None = None

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_period(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}; got {days}")
        return days


# --------------------------------------------------------------------------------------------------- monitoring


class MonitoringConfig(_Model):
    offset_lag_threshold: Annotated[StrictInt, Field(ge=1)] = 10_000
    offset_lag_evaluation_minutes: Annotated[StrictInt, Field(ge=1, le=1440)] = 15
    # Default M-of-N: two thirds of the window, so a single quiet or noisy minute neither raises nor clears it.
    offset_lag_datapoints: Annotated[
        StrictInt, Field(ge=1, le=1440, description="default: two thirds of the window")
    ] = 10
    heartbeat_minutes: Annotated[StrictInt, Field(ge=0, le=1440)] = 60
    dead_letter_age_alarm_days: Annotated[StrictInt, Field(ge=1, le=QUEUE_RETENTION_DAYS - 1)] = 4
    on_failure_age_alarm_hours: Annotated[StrictInt, Field(ge=1, le=QUEUE_RETENTION_DAYS * 24 - 1)] = 24
    errors_threshold: Annotated[StrictInt, Field(ge=1)] = 1
    throttles_threshold: Annotated[StrictInt, Field(ge=1)] = 1
    alarm_topic_arn: StrictStr | None = _text(_SNS_TOPIC_ARN, "an SNS topic ARN", default=None)
    alarm_emails: Annotated[
        tuple[Annotated[StrictStr, Field(pattern=_EMAIL)], ...], Field(description="email addresses")
    ] = ()
    create_alarm_topic: StrictBool = False

    _unique = field_validator("alarm_emails")(_no_repeats)

    @model_validator(mode="before")
    @classmethod
    def _default_datapoints(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "offsetLagDatapoints" in data or "offset_lag_datapoints" in data:
            return data
        window = data.get("offsetLagEvaluationMinutes", data.get("offset_lag_evaluation_minutes", 15))
        if type(window) is int and window >= 1:
            return {**data, "offsetLagDatapoints": max(1, (2 * window) // 3)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringConfig:
        problems: list[tuple[str, str]] = []
        if self.alarm_topic_arn and (self.alarm_emails or self.create_alarm_topic):
            problems.append(
                (
                    "alarmTopicArn",
                    "use either an existing topic (alarmTopicArn) or a new one (createAlarmTopic / alarmEmails), not "
                    "both",
                )
            )
        if self.offset_lag_datapoints > self.offset_lag_evaluation_minutes:
            problems.append(
                (
                    "offsetLagDatapoints",
                    f"must not exceed offsetLagEvaluationMinutes ({self.offset_lag_evaluation_minutes}); "
                    f"got {self.offset_lag_datapoints}",
                )
            )
        self._problems(problems)
        return self


# --------------------------------------------------------------------------------------------------- maintenance


class CompactionScheduleConfig(_Model):
    """The deployed compaction (``infra.maintenance``): a schedule, a planner, an SQS work queue and workers."""

    enabled: StrictBool = True
    schedule: StrictStr = _text(_SCHEDULE, _SCHEDULE_HINT, default="rate(1 hour)")
    target_size_mib: Annotated[StrictInt, Field(alias="targetSizeMiB", ge=1, le=MAX_COMPACTION_TARGET_MIB)] = 128
    min_age_minutes: Annotated[StrictInt, Field(ge=0, le=7 * 24 * 60)] = 120
    max_concurrency: Annotated[StrictInt, Field(ge=2, le=1000)] = 5
    memory_mib: Annotated[StrictInt, Field(alias="memoryMiB", ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB)] = 3008


class AuditScheduleConfig(_Model):
    """The deployed archive audit (``infra.maintenance``): a scheduled Lambda publishing per-topic metrics."""

    enabled: StrictBool = True
    schedule: StrictStr = _text(_SCHEDULE, _SCHEDULE_HINT, default="rate(1 hour)")
    memory_mib: Annotated[StrictInt, Field(alias="memoryMiB", ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB)] = 1024
    freshness_alarm_minutes: Annotated[StrictInt, Field(ge=5, le=7 * 24 * 60)] | None = None


class MaintenanceConfig(_Model):
    compaction: CompactionScheduleConfig = Field(default_factory=CompactionScheduleConfig)
    audit: AuditScheduleConfig = Field(default_factory=AuditScheduleConfig)


# --------------------------------------------------------------------------------------------------- the whole


class AppConfig(_Model):
    """Everything one deployment needs. Exactly one of ``msk`` / ``self_managed`` is set, per ``source_kind``."""

    model_config = ConfigDict(title="kafka-s3-archiver deployment config")

    stack_name: StrictStr = _text(_STACK_NAME, "a CloudFormation stack name", default="KafkaS3Archiver")
    account: StrictStr | None = _text(_ACCOUNT, "a 12-digit AWS account id", default=None)
    region: StrictStr | None = _text(_REGION, "an AWS region such as eu-west-1", default=None)
    source_kind: SourceKind = Field(alias="source")
    msk: MskSource | None = None
    self_managed: SelfManagedSource | None = None
    event_source: EventSourceConfig
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig)
    bucket: BucketConfig = Field(default_factory=BucketConfig)
    function: FunctionConfig = Field(default_factory=FunctionConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    catalog: CatalogConfig | None = None
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    tags: dict[str, StrictStr] = Field(default_factory=dict, description="string keys to string values")


# --------------------------------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> AppConfig:
    """Read and validate a JSON config file; ``ConfigError`` lists every problem."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError([f"config file {str(file)!r} does not exist"], source=f"config {file}") from e
    except json.JSONDecodeError as e:
        raise ConfigError([f"not valid JSON: {e}"], source=f"config {file}") from e
    return parse_config(data, source=f"config {file}")


def parse_config(data: object, *, source: str = "configuration") -> AppConfig:
    """Build an ``AppConfig`` from decoded JSON, collecting every problem before raising once."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"(top level): must be a JSON object, got {_show(data)}"], source=source)
    data = dict(data)
    problems = _source_sections(data)
    config: AppConfig | None = None
    try:
        # Validated as JSON text: JSON's types exactly (no "100" for 100), arrays for lists.
        config = AppConfig.model_validate_json(json.dumps(data))
    except ValidationError as error:
        problems += _explain(error)
    sections = _valid_sections(data) if config is None else _sections_of(config)
    problems += _across_sections(sections)
    if problems or config is None:
        raise ConfigError(problems or ["the configuration is empty"], source=source)
    return config


def _source_sections(data: dict[str, Any]) -> list[str]:
    """``msk`` and ``selfManaged``: exactly the one ``source`` names. The other is removed before validation."""
    problems = []
    kind = data.get("source")
    for key, wanted in (("msk", "msk"), ("selfManaged", "self-managed")):
        if kind in get_args(SourceKind) and kind != wanted and data.get(key) is not None:
            problems.append(f"{key}: only applies when source is {wanted!r}; remove it (source is {kind!r})")
            del data[key]
        if kind == wanted and data.get(key) is None:
            problems.append(f"{key}: is required")
    return problems


_SECTIONS: dict[str, type[_Model]] = {
    "msk": MskSource,
    "selfManaged": SelfManagedSource,
    "eventSource": EventSourceConfig,
    "archive": ArchiveConfig,
    "bucket": BucketConfig,
}


def _valid_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """Each section (and the region) that validates on its own, for the checks across sections."""
    found: dict[str, Any] = {}
    region = data.get("region")
    found["region"] = region if isinstance(region, str) and re.match(_REGION, region) else None
    for key, model in _SECTIONS.items():
        value = data.get(key, {} if key in ("archive", "bucket") else None)
        try:
            found[key] = None if value is None else model.model_validate_json(json.dumps(value))
        except ValidationError:
            found[key] = None
    found["catalog"] = data.get("catalog") is not None  # its checks across sections need only that it is there
    return found


def _sections_of(config: AppConfig) -> dict[str, Any]:
    return {
        "region": config.region,
        "msk": config.msk,
        "selfManaged": config.self_managed,
        "eventSource": config.event_source,
        "archive": config.archive,
        "bucket": config.bucket,
        "catalog": config.catalog is not None,
    }


def _across_sections(sections: Mapping[str, Any]) -> list[str]:
    """Checks across sections, on the sections that are valid."""
    problems: list[str] = []
    region: str | None = sections["region"]
    msk: MskSource | None = sections["msk"]
    self_managed: SelfManagedSource | None = sections["selfManaged"]
    event_source: EventSourceConfig | None = sections["eventSource"]
    archive: ArchiveConfig | None = sections["archive"]
    bucket: BucketConfig | None = sections["bucket"]
    if msk and region and _region_of(msk.cluster_arn) != region:
        problems.append(
            f"msk.clusterArn: is in {_region_of(msk.cluster_arn)} but region is {region}: "
            "a Lambda event source mapping reads only clusters in its own region"
        )
    secrets = {
        "msk.secretArn": msk.secret_arn if msk else None,
        "selfManaged.secretArn": self_managed.secret_arn if self_managed else None,
        "selfManaged.rootCaSecretArn": self_managed.root_ca_secret_arn if self_managed else None,
    }
    for name, arn in secrets.items():
        if region and arn and _region_of(arn) != region:
            problems.append(
                f"{name}: is in {_region_of(arn)} but region is {region}: the secret must be in the same region"
            )
    if event_source and bucket and event_source.on_failure == "bucket" and not bucket.creates_bucket:
        problems.append(
            "eventSource.onFailure: 'bucket' needs the stack-created archive bucket (its policy and lifecycle cover "
            "aws/lambda/); use 'queue' with bucket.existingBucketName"
        )
    if archive is not None:
        problems += _typed_topic_problems(archive, sections["catalog"], event_source, region)
    if archive is not None and event_source is not None:
        problems += _key_length_problems(archive, event_source)
    return problems


def _typed_topic_problems(
    archive: ArchiveConfig, catalog: bool, event_source: EventSourceConfig | None, region: str | None
) -> list[str]:
    """Typed topics are read by a mapping, their secrets and the catalog are usable."""
    problems = []
    formats = archive.value_formats
    if event_source is not None:
        for topic in sorted(set(formats) - set(event_source.topics)):
            problems.append(
                f"archive.valueFormats.{topic}: is not one of eventSource.topics "
                f"({', '.join(event_source.topics)}): no mapping reads it"
            )
    typed = archive.typed_topics()
    secrets = sorted({f.registry_auth_secret_arn for f in typed.values() if f.registry_auth_secret_arn})
    for topic, topic_format in sorted(typed.items()):
        secret = topic_format.registry_auth_secret_arn
        if region and secret and _region_of(secret) != region:
            problems.append(
                f"archive.valueFormats.{topic}.registryAuthSecretArn: is in {_region_of(secret)} but region is "
                f"{region}: the function reads secrets in its own region"
            )
    if archive.registry_auth_secret_kms_key_arn and not secrets:
        problems.append(
            "archive.registryAuthSecretKmsKeyArn: only applies when a topic of archive.valueFormats has a "
            "registryAuthSecretArn (the key encrypting it)"
        )
    if not catalog:
        return problems
    for topic, topic_format in sorted(typed.items()):
        if topic_format.format != "json" and topic_format.reader_schema is None:
            problems.append(
                f"archive.valueFormats.{topic}.readerSchema: is required with catalog for format "
                f"{topic_format.format!r}: a Glue table reads every object of the topic with one schema (json topics "
                "use their schema)"
            )
    tables: dict[str, str] = {}
    for topic in sorted(event_source.topics if event_source else typed):
        table = table_name_for(topic)
        if table in tables:
            problems.append(
                f"catalog: topics {tables[table]!r} and {topic!r} would both be table {table!r} (a-z 0-9 _ only); "
                "rename one"
            )
        tables.setdefault(table, topic)
    layout = "archive.partitionSegments" if archive.partitioner == "segments" else "archive.partitioner"
    problems += [f"{layout}: {problem}" for problem in column_problems(archive.segments())]
    return problems


def _key_length_problems(archive: ArchiveConfig, event_source: EventSourceConfig) -> list[str]:
    """Keys of every topic fit S3's 1024 bytes, whatever the records hold (each value segment is bounded)."""
    segments = archive.segments()
    path = longest_path(segments)
    problems = []
    for topic in event_source.topics:
        topic_segment = encode_topic(topic)
        # The longest name: a compacted object's (first and last offset) of a typed topic (a 16-digit fingerprint).
        name = archive_name(topic_segment, MAX_PARTITION, MAX_OFFSET, MAX_OFFSET, "f" * 16)
        longest = len(f"{archive.prefix}{topic_segment}/") + path + 1 + len(name)
        if longest > MAX_KEY_BYTES:
            field = "archive.partitionSegments" if archive.partitioner == "segments" else "archive.prefix"
            problems.append(
                f"{field}: keys of topic {topic!r} could be {longest} bytes long; S3 allows {MAX_KEY_BYTES} (shorten "
                "the prefix, the labels or the time pattern, or use fewer segments)"
            )
    return problems


def _region_of(arn: str) -> str:
    return arn.split(":")[3] if arn.count(":") >= 5 else ""


def _show(value: object) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


# --------------------------------------------------------------------------------------------------- messages


def _explain(error: ValidationError) -> list[str]:
    """pydantic's errors as this project's messages: the JSON path once, what is wrong, what is accepted."""
    problems: list[str] = []
    for item in error.errors(include_url=False):
        loc = _without_tags(tuple(item["loc"]))
        if item["type"] == "value_error" and isinstance((item.get("ctx") or {}).get("error"), Problems | LayoutError):
            base = _path(loc)
            for name, message in item["ctx"]["error"].items:
                path = ".".join(part for part in (base, name) if part)
                problems.append(f"{path or '(top level)'}: {message}")
            continue
        if loc[:1] == ("tags",):
            problems.append("tags: must be an object of string keys to string values")
            continue
        problems.append(f"{_path(loc) or '(top level)'}: {_message(item, loc)}")
    return list(dict.fromkeys(problems))  # a tags error per bad entry says the same thing


def _without_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location without the discriminator pydantic puts after a segment's index (``[0].field.name``)."""
    return tuple(
        part
        for index, part in enumerate(loc)
        if not (index >= 2 and loc[index - 2] == "partitionSegments" and isinstance(loc[index - 1], int))
    )


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(item: Any, loc: tuple[Any, ...]) -> str:
    kind, value = item["type"], item.get("input")
    field, in_list = _field_at(loc)
    hint = field.description if field is not None else None
    got = _show(value)
    if kind == "missing":
        choices = _choices(field)
        if choices:
            return f"is required: one of {', '.join(choices)}"
        return f"is required ({hint})" if hint else "is required"
    if kind == "extra_forbidden":
        return f"is not a known field; valid fields here: {', '.join(_fields_at(loc[:-1]))}"
    if kind == "literal_error":
        return f"must be one of {', '.join(_choices(field))}; got {got}"
    if kind in ("int_type", "int_parsing", "int_from_float", "greater_than_equal", "less_than_equal"):
        low, high = _bounds(field)
        span = (
            f" from {low} to {high}"
            if low is not None and high is not None
            else (f" at least {low}" if low is not None else "")
        )
        return f"must be a whole number{span}; got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false; got {got}"
    if kind == "string_pattern_mismatch":
        return f"must be {hint}; got {got}" if hint else f"must match {item['ctx']['pattern']}; got {got}"
    if kind == "string_type":
        return f"must be a string{', ' + hint if hint and not in_list else ''}; got {got}"
    if kind == "too_short":
        empty = next((m.message for m in (field.metadata if field else []) if isinstance(m, WhenEmpty)), None)
        return empty or f"is required: a non-empty list of {hint or 'values'}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list of {hint or 'values'}; got {got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        what = "an object of " + hint if hint else "a JSON object"
        return f"must be {what}; got {got}"
    if kind in ("union_tag_not_found", "union_tag_invalid"):  # a path segment without a known "kind"
        return f"must have a 'kind', one of {', '.join(SEGMENT_KINDS)}; got {got}"
    if kind == "value_error":
        return str(item["ctx"]["error"])
    return f"{item['msg']}; got {got}"


def _field_at(loc: tuple[Any, ...]) -> tuple[FieldInfo | None, bool]:
    """The field a location names (list indices skipped), and whether the location is an item of a list."""
    model: type[BaseModel] | None = AppConfig
    field: FieldInfo | None = None
    in_list = False
    for part in loc:
        if isinstance(part, int):
            in_list = True
            continue
        if model is None:
            return None, in_list
        field = _by_alias(model).get(part)
        in_list = False
        if field is None:
            return None, False
        model = _model_of(field.annotation)
    return field, in_list


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = AppConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = _by_alias(model).get(part)
        model = _model_of(field.annotation) if field else None
    return sorted(_by_alias(model)) if model else []


def _by_alias(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or inside ``X | None`` / ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _choices(field: FieldInfo | None) -> tuple[str, ...]:
    """The values of a Literal field (or of the Literal items of a list field)."""
    return _literal_values(field.annotation) if field is not None else ()


def _literal_values(annotation: Any) -> tuple[str, ...]:
    if getattr(annotation, "__origin__", None) is Literal:
        return tuple(map(str, get_args(annotation)))
    for arg in get_args(annotation):
        found = _literal_values(arg)
        if found:
            return found
    return ()


def _bounds(field: FieldInfo | None) -> tuple[int | None, int | None]:
    """The ``ge``/``le`` of an int field, also when they sit inside ``Annotated[int, Field(...)] | None``."""
    low = high = None
    for item in _metadata(field) if field else []:
        if isinstance(item, Ge):
            low = int(item.ge)  # type: ignore[call-overload]
        elif isinstance(item, Le):
            high = int(item.le)  # type: ignore[call-overload]
    return low, high


def _metadata(field: FieldInfo) -> list[Any]:
    found = list(field.metadata)
    pending = [field.annotation]
    while pending:
        annotation = pending.pop()
        for arg in get_args(annotation):
            if isinstance(arg, FieldInfo):
                found.extend(arg.metadata)
            else:
                pending.append(arg)
    return found


# --------------------------------------------------------------------------------------------------- JSON Schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (``config/schema.json``): what editors validate and complete."""
    schema = AppConfig.model_json_schema(by_alias=True, mode="validation")
    properties = schema.setdefault("properties", {})
    # A config file may name its schema and carry comments; the validator ignores these keys.
    properties["$schema"] = {"type": "string", "description": "this schema, for editors"}
    properties["$comment"] = {"type": "string", "description": "free text, ignored"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.config schema`` prints the JSON Schema (``make schema`` writes config/schema.json)."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["schema"]:
        print("usage: python -m infra.config schema", file=sys.stderr)
        return 2
    print(json.dumps(json_schema(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
