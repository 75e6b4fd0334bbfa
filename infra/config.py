"""The deployment's configuration: one JSON file -> typed, frozen dataclasses, validated at synth time.

``load_config(path)`` reads the file and ``parse_config(data)`` checks *every* field before raising, so a user sees
all problems at once. Each message names the field by its JSON path (``eventSource.batchSize``) and the values it
accepts. The archive settings are checked by the function's own ``archiver.settings.Settings``: the same rules the
Lambda applies at cold start. docs/configuration.md documents every field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from archiver.errors import SettingsError
from archiver.settings import (
    DEFAULT_CODEC,
    DEFAULT_PREFIX,
    DEFAULT_TIME_PATTERN,
    ENV_NAMES,
    Codec,
    Partitioner,
    Settings,
)
from archiver.values.config import KAFKA_TOPIC_NAME, ValueFormats, canonical_value_formats

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
# Lambda allows 4 KB for all environment variables together; VALUE_FORMATS may use most of it, the rest (bucket,
# queue URL, prefix, pattern, Powertools) stays well under 1 KB.
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

_MSK_CLUSTER_ARN = re.compile(
    r"^arn:(aws[a-z-]*):kafka:([a-z]{2}(-[a-z]+)+-\d):(\d{12}):cluster/([A-Za-z0-9-]{1,64})/([0-9a-z-]+)$"
)
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
# host:port, the host an RFC 1123 name (labels of 1-63 letters, digits and '-', not starting or ending with '-')
# or an IPv4 address; the same shape as the mapping schema's KafkaBootstrapServers pattern.
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_BOOTSTRAP_SERVER = re.compile(rf"^(?=[^:]{{1,253}}:)(?:{_HOST_LABEL}\.)*{_HOST_LABEL}:(\d{{1,5}})$")
# The mapping's Topics pattern: no leading '.', at least 2 characters (the rest is Kafka's own rule).
_ESM_TOPIC = re.compile(r"^[^.][A-Za-z0-9._-]+$")
_CONSUMER_GROUP = re.compile(r"^[A-Za-z0-9/*:_+=.@-]+$")  # AWS's pattern for the ESM's ConsumerGroupId
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
# Glue accepts more, but Athena reads only databases of lower-case letters, digits and underscores.
_DATABASE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
# Literal stand-ins for the deploy-time bucket and queue, to validate the archive settings at parse time.
_STAND_IN_BUCKET = "archive-bucket"
_STAND_IN_QUEUE_URL = "https://sqs.invalid/queue"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# EventBridge schedule expressions: rate(1 minute|N minutes|hours|days) or cron(6 fields).
_SCHEDULE = re.compile(r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$")
_SCHEDULE_HINT = "an EventBridge schedule expression such as 'rate(1 hour)', 'rate(30 minutes)' or 'cron(15 * * * ? *)'"
# A merged object is one PUT, at most 5 GiB; and a worker holds one merge in memory.
MAX_COMPACTION_TARGET_MIB = 5 * 1024


class ConfigError(Exception):
    """The deployment configuration is invalid. ``problems`` lists every problem, each naming its field."""

    def __init__(self, problems: list[str], *, source: str = "configuration") -> None:
        self.problems = list(problems)
        super().__init__(f"invalid {source}:\n  - " + "\n  - ".join(self.problems))


# --------------------------------------------------------------------------------------------------- the types


@dataclass(frozen=True, kw_only=True)
class MskSource:
    """An Amazon MSK cluster, read with IAM auth (default) or SASL/SCRAM-512 (secret)."""

    cluster_arn: str
    auth: MskAuth = "iam"
    secret_arn: str | None = None
    secret_kms_key_arn: str | None = None
    cluster_security_group_id: str | None = None

    @property
    def cluster_parts(self) -> tuple[str, str, str, str, str]:
        """(partition, region, account, cluster name, cluster uuid) of a validated ARN."""
        match = _MSK_CLUSTER_ARN.match(self.cluster_arn)
        assert match is not None, "cluster_arn was validated by parse_config"
        return match.group(1), match.group(2), match.group(4), match.group(5), match.group(6)


@dataclass(frozen=True, kw_only=True)
class VpcPlacement:
    """Where the event source mapping reaches self-managed brokers that are only reachable inside a VPC."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SelfManagedSource:
    """A self-managed Apache Kafka cluster, reached by bootstrap servers."""

    bootstrap_servers: tuple[str, ...]
    auth: SelfManagedAuth = "sasl-scram-512"
    secret_arn: str | None = None
    root_ca_secret_arn: str | None = None
    secret_kms_key_arn: str | None = None
    vpc: VpcPlacement | None = None


@dataclass(frozen=True, kw_only=True)
class ProvisionedPollers:
    minimum: int = 1
    maximum: int = 200


@dataclass(frozen=True, kw_only=True)
class EventSourceConfig:
    """The Kafka event source mapping(s): one per topic, because an ESM reads exactly one topic."""

    topics: tuple[str, ...]
    consumer_group_id: str
    batch_size: int = 100
    batching_window_seconds: int | None = None
    starting_position: StartingPosition = "TRIM_HORIZON"
    starting_position_timestamp: int | None = None
    enabled: bool = True
    provisioned_pollers: ProvisionedPollers | None = None
    retry_attempts: int | None = None
    bisect_batch_on_error: bool = False
    max_record_age_seconds: int | None = None
    on_failure: OnFailure = "queue"
    # The mapping's own metrics and system logs: AWS offers both on Kafka mappings only in provisioned mode.
    metrics: tuple[EsmMetric, ...] = ()
    system_log_level: SystemLogLevel = "off"

    def consumer_group_for(self, topic: str) -> str:
        """AWS requires a consumer group per mapping, so several topics get ``<group>-<topic>``."""
        return self.consumer_group_id if len(self.topics) == 1 else f"{self.consumer_group_id}-{topic}"


@dataclass(frozen=True, kw_only=True)
class ArchiveConfig:
    """Maps onto the function's ``archiver.settings.Settings`` (minus bucket and queue).

    ``value_formats`` is the ``VALUE_FORMATS`` object as written in the config (topic -> format settings); the
    function's own parser checks it. ``registry_auth_secret_kms_key_arn`` is infra only: the key that encrypts the
    registry auth secrets, so the role may decrypt them.
    """

    prefix: str = DEFAULT_PREFIX
    partitioner: Partitioner = "default"
    time_pattern: str = DEFAULT_TIME_PATTERN
    timezone: str = "UTC"
    partition_field: str | None = None
    codec: Codec = DEFAULT_CODEC
    value_formats: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    registry_auth_secret_kms_key_arn: str | None = None

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
            codec=self.codec,
            value_formats=canonical_value_formats(self.value_formats) if self.value_formats else None,
        )

    def typed_topics(self) -> ValueFormats:
        """The parsed format of every typed (not ``raw``) topic, with its ``.avsc`` files loaded."""
        return self.settings(bucket_name=_STAND_IN_BUCKET, dead_letter_queue_url=_STAND_IN_QUEUE_URL).typed_topics


@dataclass(frozen=True, kw_only=True)
class CatalogConfig:
    """A Glue database with one Athena table per typed topic (``infra.catalog.ArchiveCatalog``)."""

    database_name: str


@dataclass(frozen=True, kw_only=True)
class LifecycleTransition:
    storage_class: StorageClassName
    after_days: int


@dataclass(frozen=True, kw_only=True)
class LifecycleConfig:
    transitions: tuple[LifecycleTransition, ...] = ()
    expiration_days: int | None = None
    dead_letter_expiration_days: int | None = 30
    noncurrent_version_expiration_days: int | None = 30


@dataclass(frozen=True, kw_only=True)
class BucketConfig:
    """Create the archive bucket (default), or use an existing one by name - never both."""

    existing_bucket_name: str | None = None
    existing_bucket_kms_key_arn: str | None = None
    encryption: BucketEncryption = "kms"
    versioned: bool = False
    removal_policy: RemovalPolicyName = "retain"
    server_access_logs_bucket_name: str | None = None
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)

    @property
    def creates_bucket(self) -> bool:
        return self.existing_bucket_name is None


@dataclass(frozen=True, kw_only=True)
class FunctionConfig:
    architecture: Architecture = "arm64"
    memory_mib: int = 1024
    timeout_seconds: int = 120
    log_retention_days: int = 30
    tracing: bool = False
    reserved_concurrency: int | None = None


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    offset_lag_threshold: int = 10_000
    offset_lag_evaluation_minutes: int = 15
    offset_lag_datapoints: int = 10
    heartbeat_minutes: int = 60
    dead_letter_age_alarm_days: int = 4
    on_failure_age_alarm_hours: int = 24
    errors_threshold: int = 1
    throttles_threshold: int = 1
    alarm_topic_arn: str | None = None
    alarm_emails: tuple[str, ...] = ()
    create_alarm_topic: bool = False


@dataclass(frozen=True, kw_only=True)
class CompactionScheduleConfig:
    """The deployed compaction (``infra.maintenance``): a schedule, a planner, an SQS work queue and workers."""

    enabled: bool = True
    schedule: str = "rate(1 hour)"
    target_size_mib: int = 128
    min_age_minutes: int = 120
    max_concurrency: int = 5
    memory_mib: int = 3008


@dataclass(frozen=True, kw_only=True)
class AuditScheduleConfig:
    """The deployed archive audit (``infra.maintenance``): a scheduled Lambda publishing per-topic metrics."""

    enabled: bool = True
    schedule: str = "rate(1 hour)"
    memory_mib: int = 1024
    freshness_alarm_minutes: int | None = None


@dataclass(frozen=True, kw_only=True)
class MaintenanceConfig:
    compaction: CompactionScheduleConfig = field(default_factory=CompactionScheduleConfig)
    audit: AuditScheduleConfig = field(default_factory=AuditScheduleConfig)


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """Everything one deployment needs. Exactly one of ``msk`` / ``self_managed`` is set, per ``source_kind``."""

    stack_name: str = "KafkaS3Archiver"
    account: str | None = None
    region: str | None = None
    source_kind: SourceKind
    msk: MskSource | None = None
    self_managed: SelfManagedSource | None = None
    event_source: EventSourceConfig
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    bucket: BucketConfig = field(default_factory=BucketConfig)
    function: FunctionConfig = field(default_factory=FunctionConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    catalog: CatalogConfig | None = None
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    tags: Mapping[str, str] = field(default_factory=dict)


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
    problems: list[str] = []
    root = _Obj(data, "", problems)
    config = _parse_root(root, problems)
    if problems or config is None:
        raise ConfigError(problems or ["the configuration is empty"], source=source)
    return config


class _Obj:
    """One JSON object being read: typed getters that record problems instead of raising, and unknown keys."""

    def __init__(self, data: object, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.seen: set[str] = {"$comment", "_comment"}
        if isinstance(data, Mapping):
            self.data: Mapping[str, Any] = data
        else:
            self.data = {}
            self.fail("", f"must be a JSON object, got {_show(data)}")

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.name(key) if key else (self.path or '(top level)')}: {message}")

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        self.seen.add(key)
        return self.data.get(key) is not None

    def string(
        self, key: str, default: str | None = None, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string{', ' + hint if hint else ''}; got {_show(value)}")
            return default
        if pattern is not None and not pattern.match(value):
            self.fail(key, f"must be {hint or 'match ' + pattern.pattern}; got {value!r}")
            return default
        return value

    def required_string(self, key: str, *, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not self.has(key):
            self.fail(key, f"is required{' (' + hint + ')' if hint else ''}")
            return ""
        return self.string(key, pattern=pattern, hint=hint) or ""

    def choice[T: str](self, key: str, choices: tuple[T, ...], default: T) -> T:
        value = self.raw(key)
        if value is None:
            return default
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}; got {_show(value)}")
            return default
        return cast(T, value)

    def integer(self, key: str, default: int | None, *, low: int, high: int | None = None) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.fail(key, f"must be a whole number {span}; got {_show(value)}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false; got {_show(value)}")
            return default
        return value

    def strings(self, key: str, *, pattern: re.Pattern[str], hint: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(key, f"must be a list of {hint}; got {_show(value)}")
            return ()
        good = []
        for index, item in enumerate(value):
            if isinstance(item, str) and pattern.match(item):
                good.append(item)
            else:
                self.fail(f"{key}[{index}]", f"must be {hint}; got {_show(item)}")
        if len(set(good)) != len(good):
            self.fail(key, f"must not repeat entries; got {good}")
        return tuple(good)

    def child(self, key: str) -> _Obj | None:
        value = self.raw(key)
        return None if value is None else _Obj(value, self.name(key), self.problems)

    def finish(self) -> None:
        """Report keys nobody asked for: almost always a typo that would otherwise be silently ignored."""
        for key in sorted(set(self.data) - self.seen):
            valid = ", ".join(sorted(self.seen - {"$comment", "_comment"}))
            self.fail(key, f"is not a known field; valid fields here: {valid}")


def _show(value: object) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _parse_root(root: _Obj, problems: list[str]) -> AppConfig | None:
    stack_name = root.string("stackName", "KafkaS3Archiver", pattern=_STACK_NAME, hint="a CloudFormation stack name")
    account = root.string("account", pattern=_ACCOUNT, hint="a 12-digit AWS account id")
    region = root.string("region", pattern=_REGION, hint="an AWS region such as eu-west-1")
    kind = root.choice("source", get_args(SourceKind), cast(SourceKind, ""))
    if not root.has("source"):
        root.fail("source", f"is required: one of {', '.join(get_args(SourceKind))}")

    msk = _section(root, "msk", _parse_msk) if kind == "msk" else None
    self_managed = _section(root, "selfManaged", _parse_self_managed) if kind == "self-managed" else None
    for key, wanted in (("msk", "msk"), ("selfManaged", "self-managed")):
        if kind and kind != wanted and root.has(key):
            root.fail(key, f"only applies when source is {wanted!r}; remove it (source is {kind!r})")

    event_source = _section(root, "eventSource", _parse_event_source)
    archive = _parse_archive(root.child("archive"))
    bucket = _parse_bucket(root.child("bucket"))
    function = _parse_function(root.child("function"))
    monitoring = _parse_monitoring(root.child("monitoring"))
    catalog = _parse_catalog(root.child("catalog"))
    maintenance = _parse_maintenance(root.child("maintenance"))
    tags = _parse_tags(root)
    root.finish()

    if msk and region and msk.cluster_arn and _region_of(msk.cluster_arn) != region:
        root.fail(
            "msk.clusterArn",
            f"is in {_region_of(msk.cluster_arn)} but region is {region}: "
            "a Lambda event source mapping reads only clusters in its own region",
        )
    secrets = {
        "msk.secretArn": msk.secret_arn if msk else None,
        "selfManaged.secretArn": self_managed.secret_arn if self_managed else None,
        "selfManaged.rootCaSecretArn": self_managed.root_ca_secret_arn if self_managed else None,
    }
    for name, arn in secrets.items():
        if region and arn and _region_of(arn) != region:
            root.fail(name, f"is in {_region_of(arn)} but region is {region}: the secret must be in the same region")
    if event_source and event_source.on_failure == "bucket" and not bucket.creates_bucket:
        root.fail(
            "eventSource.onFailure",
            "'bucket' needs the stack-created archive bucket (its policy and lifecycle cover aws/lambda/); "
            "use 'dead-letter-queue' with bucket.existingBucketName",
        )
    if archive is not None:
        _check_typed_topics(root, archive, catalog, event_source, region)
    if problems or event_source is None or archive is None:
        return None
    return AppConfig(
        stack_name=stack_name or "KafkaS3Archiver",
        account=account,
        region=region,
        source_kind=kind,
        msk=msk,
        self_managed=self_managed,
        event_source=event_source,
        archive=archive,
        bucket=bucket,
        function=function,
        monitoring=monitoring,
        catalog=catalog,
        maintenance=maintenance,
        tags=tags,
    )


def _region_of(arn: str) -> str:
    return arn.split(":")[3] if arn.count(":") >= 5 else ""


def _section[T](root: _Obj, key: str, parse: Callable[[_Obj], T]) -> T | None:
    obj = root.child(key)
    if obj is None:
        root.fail(key, "is required")
        return None
    result = parse(obj)
    obj.finish()
    return result


def _parse_msk(obj: _Obj) -> MskSource:
    arn = obj.required_string(
        "clusterArn",
        pattern=_MSK_CLUSTER_ARN,
        hint="an MSK cluster ARN, arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>",
    )
    auth = obj.choice("auth", get_args(MskAuth), "iam")
    secret = obj.string("secretArn", pattern=_SECRET_ARN, hint="a Secrets Manager secret ARN")
    if auth == "sasl-scram-512" and not obj.has("secretArn"):
        obj.fail(
            "secretArn", "is required when auth is 'sasl-scram-512' (the AmazonMSK_ secret associated with the cluster)"
        )
    if auth == "iam" and obj.has("secretArn"):
        obj.fail("secretArn", "only applies to auth 'sasl-scram-512'; IAM auth uses no secret")
    kms = obj.string("secretKmsKeyArn", pattern=_KMS_KEY_ARN, hint="a KMS key ARN")
    if kms and auth == "iam":
        obj.fail("secretKmsKeyArn", "only applies to auth 'sasl-scram-512' (the key that encrypts the secret)")
    if auth == "sasl-scram-512":
        if secret and not secret.split(":secret:", 1)[1].startswith(MSK_SCRAM_SECRET_PREFIX):
            obj.fail(
                "secretArn",
                f"must name a secret whose name starts with {MSK_SCRAM_SECRET_PREFIX!r}: MSK associates only such "
                f"secrets with a cluster for SASL/SCRAM; got {secret!r}",
            )
        if not obj.has("secretKmsKeyArn"):
            obj.fail(
                "secretKmsKeyArn",
                "is required when auth is 'sasl-scram-512': MSK accepts only SCRAM secrets encrypted with a "
                "customer managed KMS key (not the default aws/secretsmanager key), and the role must decrypt it",
            )
    _check_source_access_uris(obj, {"secretArn": secret})
    group = obj.string("clusterSecurityGroupId", pattern=_SECURITY_GROUP_ID, hint="a security group id, sg-...")
    return MskSource(
        cluster_arn=arn, auth=auth, secret_arn=secret, secret_kms_key_arn=kms, cluster_security_group_id=group
    )


def _parse_self_managed(obj: _Obj) -> SelfManagedSource:
    servers = obj.strings(
        "bootstrapServers",
        pattern=_BOOTSTRAP_SERVER,
        hint="host:port with an RFC 1123 host name (labels of A-Z a-z 0-9 and '-', not starting or ending with '-')",
    )
    if not servers:
        obj.fail("bootstrapServers", "is required: a non-empty list of host:port")
    for index, server in enumerate(servers):
        port = int(server.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            obj.fail(f"bootstrapServers[{index}]", f"must have a port from 1 to 65535; got {server!r}")
    if len(servers) > MAX_BOOTSTRAP_SERVERS:
        obj.fail(
            "bootstrapServers",
            f"has {len(servers)} servers; AWS Lambda accepts at most {MAX_BOOTSTRAP_SERVERS} (a few per cluster "
            "are enough to bootstrap)",
        )
    auth = obj.choice("auth", get_args(SelfManagedAuth), "sasl-scram-512")
    secret = obj.string("secretArn", pattern=_SECRET_ARN, hint="a Secrets Manager secret ARN")
    if auth != "none" and not obj.has("secretArn"):
        what = "the client certificate and key" if auth == "mtls" else "the username and password"
        obj.fail("secretArn", f"is required when auth is {auth!r} (a Secrets Manager secret with {what})")
    if auth == "none" and obj.has("secretArn"):
        obj.fail("secretArn", "must not be set when auth is 'none'")
    root_ca = obj.string("rootCaSecretArn", pattern=_SECRET_ARN, hint="a Secrets Manager secret ARN")
    kms = obj.string("secretKmsKeyArn", pattern=_KMS_KEY_ARN, hint="a KMS key ARN")
    vpc = None
    vpc_obj = obj.child("vpc")
    if vpc_obj is not None:
        subnets = vpc_obj.strings("subnetIds", pattern=_SUBNET_ID, hint="subnet ids (subnet-...)")
        groups = vpc_obj.strings("securityGroupIds", pattern=_SECURITY_GROUP_ID, hint="security group ids (sg-...)")
        if not subnets:
            vpc_obj.fail("subnetIds", "is required with vpc: the subnets the mapping reaches the brokers from")
        if not groups:
            vpc_obj.fail("securityGroupIds", "is required with vpc: the security groups for the mapping's interfaces")
        vpc_obj.finish()
        vpc = VpcPlacement(subnet_ids=subnets, security_group_ids=groups)
    _check_source_access_uris(obj, {"secretArn": secret, "rootCaSecretArn": root_ca})
    entries = {
        "auth secret": 1 if secret else 0,
        "root CA secret": 1 if root_ca else 0,
        "subnets": len(vpc.subnet_ids) if vpc else 0,
        "security groups": len(vpc.security_group_ids) if vpc else 0,
    }
    if sum(entries.values()) > MAX_SOURCE_ACCESS_CONFIGURATIONS:
        counted = ", ".join(f"{count} {what}" for what, count in entries.items() if count)
        obj.fail(
            "vpc",
            f"makes {sum(entries.values())} source-access entries ({counted}); AWS Lambda accepts at most "
            f"{MAX_SOURCE_ACCESS_CONFIGURATIONS} per event source mapping",
        )
    return SelfManagedSource(
        bootstrap_servers=servers,
        auth=auth,
        secret_arn=secret,
        root_ca_secret_arn=root_ca,
        secret_kms_key_arn=kms,
        vpc=vpc,
    )


def _check_source_access_uris(obj: _Obj, uris: Mapping[str, str | None]) -> None:
    """Secrets the mapping names in SourceAccessConfigurations: AWS limits each URI to 200 characters."""
    for key, uri in uris.items():
        if uri and len(uri) > MAX_SOURCE_ACCESS_URI_LENGTH:
            obj.fail(
                key,
                f"is {len(uri)} characters; an event source mapping accepts secret ARNs of at most "
                f"{MAX_SOURCE_ACCESS_URI_LENGTH} (use a shorter secret name)",
            )


def _parse_event_source(obj: _Obj) -> EventSourceConfig:
    topics = obj.strings("topics", pattern=KAFKA_TOPIC_NAME, hint="Kafka topic names (1-249 of A-Z a-z 0-9 . _ -)")
    if not topics:
        obj.fail("topics", "is required: a non-empty list of topic names (one event source mapping per topic)")
    for index, topic in enumerate(topics):
        if not _ESM_TOPIC.match(topic):
            # Kafka accepts these, but AWS::Lambda::EventSourceMapping's Topics pattern does not.
            obj.fail(
                f"topics[{index}]",
                "must have at least 2 characters and not start with '.' (AWS Lambda's event source mapping "
                f"rejects it); got {topic!r}",
            )
    topics = tuple(topic for topic in topics if _ESM_TOPIC.match(topic))
    group = obj.required_string(
        "consumerGroupId", pattern=_CONSUMER_GROUP, hint="a consumer group id of A-Z a-z 0-9 and / * : _ + = . @ -"
    )
    longest = max((len(t) for t in topics), default=0)
    full = len(group) if len(topics) <= 1 else len(group) + 1 + longest
    if group and full > MAX_CONSUMER_GROUP_ID_LENGTH:
        obj.fail("consumerGroupId", f"makes a group id of {full} characters; AWS allows {MAX_CONSUMER_GROUP_ID_LENGTH}")
    batch_size = obj.integer("batchSize", 100, low=1, high=MAX_BATCH_SIZE) or 100
    window = obj.integer("batchingWindowSeconds", None, low=0, high=MAX_BATCHING_WINDOW_SECONDS)
    position = obj.choice("startingPosition", get_args(StartingPosition), "TRIM_HORIZON")
    timestamp = obj.integer("startingPositionTimestamp", None, low=1)
    if position == "AT_TIMESTAMP" and timestamp is None:
        obj.fail("startingPositionTimestamp", "is required when startingPosition is 'AT_TIMESTAMP' (Unix seconds)")
    if position != "AT_TIMESTAMP" and obj.has("startingPositionTimestamp"):
        obj.fail("startingPositionTimestamp", "only applies when startingPosition is 'AT_TIMESTAMP'")
    pollers = None
    pollers_obj = obj.child("provisionedPollers")
    if pollers_obj is not None:
        low = pollers_obj.integer("minimum", MIN_POLLERS, low=MIN_POLLERS, high=MAX_MINIMUM_POLLERS) or MIN_POLLERS
        high = pollers_obj.integer("maximum", 200, low=MIN_POLLERS, high=MAX_MAXIMUM_POLLERS) or 200
        if low > high:
            pollers_obj.fail("minimum", f"must not exceed maximum ({high}); got {low}")
        pollers_obj.finish()
        pollers = ProvisionedPollers(minimum=low, maximum=high)
    retry = obj.integer("retryAttempts", None, low=-1, high=MAX_RETRY_ATTEMPTS)
    bisect = obj.boolean("bisectBatchOnError", False)
    max_age = obj.integer("maxRecordAgeSeconds", None, low=-1, high=MAX_RECORD_AGE_SECONDS)
    if max_age is not None and max_age != -1 and max_age < MIN_RECORD_AGE_SECONDS:
        obj.fail("maxRecordAgeSeconds", f"must be -1 or from {MIN_RECORD_AGE_SECONDS} to {MAX_RECORD_AGE_SECONDS}")
    # AWS accepts Kafka error-handling controls only on mappings in provisioned mode.
    if pollers is None:
        for key, is_set in (
            ("retryAttempts", retry is not None),
            ("bisectBatchOnError", bisect),
            ("maxRecordAgeSeconds", max_age is not None),
        ):
            if is_set:
                obj.fail(
                    key, "needs provisioned mode: AWS allows it on Kafka mappings only with provisionedPollers set"
                )
    if obj.raw("onFailure") == "dead-letter-queue":
        obj.fail(
            "onFailure",
            "'dead-letter-queue' is now 'queue': batches the mapping gives up on go to their own on-failure queue, "
            "apart from the records the function dead-letters",
        )
        on_failure: OnFailure = "queue"
    else:
        on_failure = obj.choice("onFailure", get_args(OnFailure), "queue")
    metrics, log_level = _parse_mapping_observability(obj, provisioned=pollers is not None)
    return EventSourceConfig(
        topics=topics,
        consumer_group_id=group,
        batch_size=batch_size,
        batching_window_seconds=window,
        starting_position=position,
        starting_position_timestamp=timestamp,
        enabled=obj.boolean("enabled", True),
        provisioned_pollers=pollers,
        retry_attempts=retry,
        bisect_batch_on_error=bisect,
        max_record_age_seconds=max_age,
        on_failure=on_failure,
        metrics=metrics,
        system_log_level=log_level,
    )


def _parse_mapping_observability(obj: _Obj, *, provisioned: bool) -> tuple[tuple[EsmMetric, ...], SystemLogLevel]:
    """``metrics`` and ``systemLogLevel``: all metrics and WARN logs by default, in provisioned mode only.

    AWS offers MetricsConfig and LoggingConfig on Kafka mappings only in provisioned mode (aws-cdk-lib 2.275's
    aws-lambda-event-sources README, "Kafka Observability Features"; Lambda developer guide, "Kafka event source
    mapping logging").
    """
    all_metrics: tuple[EsmMetric, ...] = get_args(EsmMetric)
    metrics: tuple[EsmMetric, ...] = all_metrics if provisioned else ()
    raw = obj.raw("metrics")
    if raw is not None:
        if not isinstance(raw, list):
            obj.fail("metrics", f"must be a list of {', '.join(all_metrics)} (or [] for none); got {_show(raw)}")
        else:
            chosen = [m for m in raw if m in all_metrics]
            for index, item in enumerate(raw):
                if item not in all_metrics:
                    obj.fail(f"metrics[{index}]", f"must be one of {', '.join(all_metrics)}; got {_show(item)}")
            if len(set(chosen)) != len(chosen):
                obj.fail("metrics", f"must not repeat entries; got {chosen}")
            metrics = tuple(m for m in all_metrics if m in chosen)
    default_level: SystemLogLevel = "WARN" if provisioned else "off"
    level = obj.choice("systemLogLevel", get_args(SystemLogLevel), default_level)
    if not provisioned:
        for key, is_set in (("metrics", bool(metrics)), ("systemLogLevel", level != "off")):
            if is_set:
                obj.fail(
                    key,
                    "needs provisioned mode: AWS offers a Kafka mapping's metrics and logs only with "
                    "provisionedPollers set",
                )
    return metrics, level


_ARCHIVE_FIELDS = {
    "archive_prefix": "archive.prefix",
    "partitioner": "archive.partitioner",
    "time_pattern": "archive.timePattern",
    "timezone": "archive.timezone",
    "partition_field": "archive.partitionField",
    "codec": "archive.codec",
    "value_formats": "archive.valueFormats",
}


def _parse_archive(obj: _Obj | None) -> ArchiveConfig | None:
    if obj is None:
        return ArchiveConfig()
    values: dict[str, Any] = {}
    for key, attr in (
        ("prefix", "prefix"),
        ("partitioner", "partitioner"),
        ("timePattern", "time_pattern"),
        ("timezone", "timezone"),
        ("partitionField", "partition_field"),
        ("codec", "codec"),
    ):
        value = obj.raw(key)
        if value is None:
            continue
        if not isinstance(value, str):
            obj.fail(key, f"must be a string; got {_show(value)}")
            continue
        values[attr] = value
    formats = obj.raw("valueFormats")
    if formats is not None:
        if isinstance(formats, Mapping):
            # Each entry is checked by the function's own parser (below), which names the topic and the setting.
            values["value_formats"] = dict(formats)
            size = len(canonical_value_formats(formats).encode())
            if size > MAX_VALUE_FORMATS_BYTES:
                obj.fail(
                    "valueFormats",
                    f"is {size} bytes as {ENV_NAMES['value_formats']}; Lambda allows 4 KB for all environment "
                    f"variables together, so keep it under {MAX_VALUE_FORMATS_BYTES}",
                )
        else:
            obj.fail("valueFormats", f"must be an object of topic -> format settings; got {_show(formats)}")
    kms_key = obj.string("registryAuthSecretKmsKeyArn", pattern=_KMS_KEY_ARN, hint="a KMS key ARN")
    if kms_key:
        values["registry_auth_secret_kms_key_arn"] = kms_key
    obj.finish()
    prefix = values.get("prefix", DEFAULT_PREFIX)
    if prefix.startswith(ON_FAILURE_PREFIX):
        obj.fail("prefix", f"must not start with {ON_FAILURE_PREFIX!r}: Lambda writes on-failure records there")
        return None
    archive = ArchiveConfig(**values)
    try:
        # The function's own validation, with literal stand-ins for the deploy-time bucket and queue.
        archive.settings(bucket_name=_STAND_IN_BUCKET, dead_letter_queue_url=_STAND_IN_QUEUE_URL)
    except SettingsError as e:
        for problem in e.problems:
            field_name = next((name for attr, name in _ARCHIVE_FIELDS.items() if f"({attr})" in problem), "archive")
            obj.problems.append(f"{field_name}: {problem}")
        return None
    return archive


def _parse_catalog(obj: _Obj | None) -> CatalogConfig | None:
    if obj is None:
        return None
    name = obj.required_string(
        "databaseName", pattern=_DATABASE_NAME, hint="a Glue database name of 1-255 a-z 0-9 _ (Athena's rule)"
    )
    obj.finish()
    return CatalogConfig(database_name=name)


def _check_typed_topics(
    root: _Obj,
    archive: ArchiveConfig,
    catalog: CatalogConfig | None,
    event_source: EventSourceConfig | None,
    region: str | None,
) -> None:
    """Checks across sections: typed topics are read by a mapping, their secrets and the catalog are usable."""
    formats = archive.value_formats
    if event_source is not None and event_source.topics:
        for topic in sorted(set(formats) - set(event_source.topics)):
            root.fail(
                f"archive.valueFormats.{topic}",
                f"is not one of eventSource.topics ({', '.join(event_source.topics)}): no mapping reads it",
            )
    typed = archive.typed_topics()
    secrets = sorted({f.registry_auth_secret_arn for f in typed.values() if f.registry_auth_secret_arn})
    for topic, topic_format in sorted(typed.items()):
        secret = topic_format.registry_auth_secret_arn
        if region and secret and _region_of(secret) != region:
            root.fail(
                f"archive.valueFormats.{topic}.registryAuthSecretArn",
                f"is in {_region_of(secret)} but region is {region}: the function reads secrets in its own region",
            )
    if archive.registry_auth_secret_kms_key_arn and not secrets:
        root.fail(
            "archive.registryAuthSecretKmsKeyArn",
            "only applies when a topic of archive.valueFormats has a registryAuthSecretArn (the key encrypting it)",
        )
    if catalog is None:
        return
    if archive.partitioner != "time":
        root.fail(
            "catalog",
            f"needs archive.partitioner 'time' (the tables' partition projection follows archive.timePattern); "
            f"got {archive.partitioner!r}",
        )
    if not typed:
        root.fail("catalog", "needs at least one typed topic in archive.valueFormats (raw topics get no table)")
    for topic, topic_format in sorted(typed.items()):
        if topic_format.format != "json" and topic_format.reader_schema is None:
            root.fail(
                f"archive.valueFormats.{topic}.readerSchema",
                f"is required with catalog for format {topic_format.format!r}: a Glue table reads every object of "
                "the topic with one schema (json topics use their schema)",
            )
    tables: dict[str, str] = {}
    for topic in sorted(typed):
        table = table_name_for(topic)
        if table in tables:
            root.fail(
                "catalog",
                f"topics {tables[table]!r} and {topic!r} would both be table {table!r} (a-z 0-9 _ only); rename one",
            )
        tables.setdefault(table, topic)


def table_name_for(topic: str) -> str:
    """The Glue table name of a topic (``infra.catalog`` names its tables with it): lower-cased, a-z 0-9 _ only."""
    return re.sub(r"[^a-z0-9_]", "_", topic.lower())


def _parse_bucket(obj: _Obj | None) -> BucketConfig:
    if obj is None:
        return BucketConfig()
    existing = obj.string("existingBucketName", pattern=_BUCKET_NAME, hint="an S3 bucket name")
    existing_key = obj.string("existingBucketKmsKeyArn", pattern=_KMS_KEY_ARN, hint="a KMS key ARN")
    if existing_key and not existing:
        obj.fail("existingBucketKmsKeyArn", "only applies with existingBucketName (the key that bucket encrypts with)")
    encryption = obj.choice("encryption", get_args(BucketEncryption), "kms")
    versioned = obj.boolean("versioned", False)
    removal = obj.choice("removalPolicy", get_args(RemovalPolicyName), "retain")
    logs = obj.string("serverAccessLogsBucketName", pattern=_BUCKET_NAME, hint="an S3 bucket name")
    lifecycle = LifecycleConfig()
    lifecycle_obj = obj.child("lifecycle")
    if lifecycle_obj is not None:
        lifecycle = _parse_lifecycle(lifecycle_obj)
    if existing:
        # An existing bucket keeps its own settings: the stack neither creates nor changes it.
        for key in ("encryption", "versioned", "removalPolicy", "serverAccessLogsBucketName", "lifecycle"):
            if obj.has(key):
                obj.fail(key, "only applies to a bucket the stack creates; remove it or remove existingBucketName")
    obj.finish()
    return BucketConfig(
        existing_bucket_name=existing,
        existing_bucket_kms_key_arn=existing_key,
        encryption=encryption,
        versioned=versioned,
        removal_policy=removal,
        server_access_logs_bucket_name=logs,
        lifecycle=lifecycle,
    )


def _parse_lifecycle(obj: _Obj) -> LifecycleConfig:
    transitions = []
    raw = obj.raw("transitions")
    if raw is not None and not isinstance(raw, list):
        obj.fail("transitions", f"must be a list of {{storageClass, afterDays}}; got {_show(raw)}")
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        entry = _Obj(item, obj.name(f"transitions[{index}]"), obj.problems)
        storage = entry.choice("storageClass", get_args(StorageClassName), cast(StorageClassName, ""))
        if not entry.has("storageClass"):
            entry.fail("storageClass", f"is required: one of {', '.join(get_args(StorageClassName))}")
        days = entry.integer("afterDays", None, low=0)
        if days is None and not entry.has("afterDays"):
            entry.fail("afterDays", "is required: days after creation")
        if storage in ("STANDARD_IA", "ONEZONE_IA") and days is not None and days < MIN_IA_TRANSITION_DAYS:
            entry.fail("afterDays", f"must be at least {MIN_IA_TRANSITION_DAYS} for {storage} (an S3 rule); got {days}")
        entry.finish()
        if storage and days is not None:
            transitions.append(LifecycleTransition(storage_class=storage, after_days=days))
    expiration = obj.integer("expirationDays", None, low=1)
    for transition in transitions:
        if expiration is not None and transition.after_days >= expiration:
            obj.fail(
                "expirationDays",
                f"must be later than every transition; {transition.storage_class} is at day {transition.after_days}",
            )
    lifecycle = LifecycleConfig(
        transitions=tuple(transitions),
        expiration_days=expiration,
        dead_letter_expiration_days=obj.integer("deadLetterExpirationDays", 30, low=1),
        noncurrent_version_expiration_days=obj.integer("noncurrentVersionExpirationDays", 30, low=1),
    )
    obj.finish()
    return lifecycle


def _parse_function(obj: _Obj | None) -> FunctionConfig:
    if obj is None:
        return FunctionConfig()
    retention = obj.integer("logRetentionDays", 30, low=1)
    if retention not in LOG_RETENTION_DAYS:
        obj.fail("logRetentionDays", f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}; got {retention}")
    config = FunctionConfig(
        architecture=obj.choice("architecture", get_args(Architecture), "arm64"),
        memory_mib=obj.integer("memoryMiB", 1024, low=MIN_MEMORY_MIB, high=MAX_MEMORY_MIB) or 1024,
        # MAX_TIMEOUT_SECONDS is Lambda's cap, but a function behind a Kafka mapping may run at most 14 minutes.
        timeout_seconds=obj.integer("timeoutSeconds", 120, low=1, high=MAX_KAFKA_TIMEOUT_SECONDS) or 120,
        log_retention_days=retention or 30,
        tracing=obj.boolean("tracing", False),
        reserved_concurrency=obj.integer("reservedConcurrency", None, low=1),
    )
    obj.finish()
    return config


def _parse_monitoring(obj: _Obj | None) -> MonitoringConfig:
    if obj is None:
        return MonitoringConfig()
    topic = obj.string("alarmTopicArn", pattern=_SNS_TOPIC_ARN, hint="an SNS topic ARN")
    emails = obj.strings("alarmEmails", pattern=_EMAIL, hint="email addresses")
    create = obj.boolean("createAlarmTopic", False)
    if topic and (emails or create):
        obj.fail(
            "alarmTopicArn",
            "use either an existing topic (alarmTopicArn) or a new one (createAlarmTopic / alarmEmails), not both",
        )
    evaluation = obj.integer("offsetLagEvaluationMinutes", 15, low=1, high=1440) or 15
    datapoints = obj.integer("offsetLagDatapoints", None, low=1, high=1440)
    if datapoints is not None and datapoints > evaluation:
        obj.fail("offsetLagDatapoints", f"must not exceed offsetLagEvaluationMinutes ({evaluation}); got {datapoints}")
    config = MonitoringConfig(
        offset_lag_threshold=obj.integer("offsetLagThreshold", 10_000, low=1) or 10_000,
        offset_lag_evaluation_minutes=evaluation,
        # Default M-of-N: two thirds of the window, so a single quiet or noisy minute neither raises nor clears it.
        offset_lag_datapoints=min(datapoints or max(1, (2 * evaluation) // 3), evaluation),
        heartbeat_minutes=_or_default(obj.integer("heartbeatMinutes", 60, low=0, high=1440), 60),
        dead_letter_age_alarm_days=_or_default(
            obj.integer("deadLetterAgeAlarmDays", 4, low=1, high=QUEUE_RETENTION_DAYS - 1), 4
        ),
        on_failure_age_alarm_hours=_or_default(
            obj.integer("onFailureAgeAlarmHours", 24, low=1, high=QUEUE_RETENTION_DAYS * 24 - 1), 24
        ),
        errors_threshold=obj.integer("errorsThreshold", 1, low=1) or 1,
        throttles_threshold=obj.integer("throttlesThreshold", 1, low=1) or 1,
        alarm_topic_arn=topic,
        alarm_emails=emails,
        create_alarm_topic=create,
    )
    obj.finish()
    return config


def _parse_maintenance(obj: _Obj | None) -> MaintenanceConfig:
    if obj is None:
        return MaintenanceConfig()
    compaction = CompactionScheduleConfig()
    section = obj.child("compaction")
    if section is not None:
        compaction = CompactionScheduleConfig(
            enabled=section.boolean("enabled", True),
            schedule=section.string("schedule", "rate(1 hour)", pattern=_SCHEDULE, hint=_SCHEDULE_HINT) or "",
            target_size_mib=section.integer("targetSizeMiB", 128, low=1, high=MAX_COMPACTION_TARGET_MIB) or 128,
            min_age_minutes=_or_default(section.integer("minAgeMinutes", 120, low=0, high=7 * 24 * 60), 120),
            max_concurrency=section.integer("maxConcurrency", 5, low=2, high=1000) or 5,
            memory_mib=section.integer("memoryMiB", 3008, low=MIN_MEMORY_MIB, high=MAX_MEMORY_MIB) or 3008,
        )
        section.finish()
    audit = AuditScheduleConfig()
    section = obj.child("audit")
    if section is not None:
        audit = AuditScheduleConfig(
            enabled=section.boolean("enabled", True),
            schedule=section.string("schedule", "rate(1 hour)", pattern=_SCHEDULE, hint=_SCHEDULE_HINT) or "",
            memory_mib=section.integer("memoryMiB", 1024, low=MIN_MEMORY_MIB, high=MAX_MEMORY_MIB) or 1024,
            freshness_alarm_minutes=section.integer("freshnessAlarmMinutes", None, low=5, high=7 * 24 * 60),
        )
        section.finish()
    obj.finish()
    return MaintenanceConfig(compaction=compaction, audit=audit)


def _or_default(value: int | None, default: int) -> int:
    return default if value is None else value


def _parse_tags(root: _Obj) -> dict[str, str]:
    raw = root.raw("tags")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        root.fail("tags", f"must be an object of string keys to string values; got {_show(raw)}")
        return {}
    return dict(raw)
