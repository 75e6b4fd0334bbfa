"""The flags every command shares, one spelling per concept, and how they are resolved.

Where a value is not given as a flag, it comes from the deployment (``--config FILE``: the deployment config; the
deployed stack's outputs, found by the config's ``stackName`` with CloudFormation DescribeStacks): the bucket, the
prefix, the topics and consumer groups, the two queues, the Kafka servers and how the event source mapping
authenticates. Flags always win.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive_ops.cli.errors import CliError
from archive_ops.kafka_client import (
    KEY_PASSWORD_ENV,
    MSK_IAM,
    PASSWORD_ENV,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    KafkaConnection,
    from_properties,
    read_properties,
)

if TYPE_CHECKING:
    from infra.config import AppConfig

DEFAULT_PREFIX = "topics/"
_SIZE = re.compile(r"^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


# ---------------------------------------------------------------------------------------------------------------------
# value parsers (argparse types: a bad value is a usage error, exit 2)


def parse_size(text: str) -> int:
    match = _SIZE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size like 128MiB or 1000000, got {text!r}")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m, 2h or 1d, got {text!r}")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def parse_time(text: str) -> int:
    """Epoch milliseconds, or an ISO 8601 time (``2024-05-01T13:00:00Z``; no zone means UTC)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected epoch milliseconds or ISO 8601, got {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def offset(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an offset (0 or more), got {text!r}")
    return int(text)


def partition(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a partition number (0 or more), got {text!r}")
    return int(text)


# ---------------------------------------------------------------------------------------------------------------------
# flag groups


def add_deployment(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    group = parser.add_argument_group("deployment")
    group.add_argument(
        "--config",
        type=Path,
        required=required,
        metavar="FILE",
        help="the deployment config (config/*.json): defaults for the bucket, prefix, topics, group, queues, Kafka "
        "servers and authentication, the stack's outputs looked up by its stackName",
    )


def add_archive(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("archive")
    group.add_argument("--bucket", metavar="NAME", help="archive bucket (default: the stack's ArchiveBucketName)")
    group.add_argument("--prefix", metavar="PREFIX", help="archive key prefix (default: the config's, or topics/)")


def add_topics(parser: argparse.ArgumentParser, *, many: bool, required: bool = False) -> None:
    if many:
        parser.add_argument(
            "--topic", action="append", metavar="NAME", help="a topic (repeatable; default: the config's topics)"
        )
        parser.add_argument(
            "--partition", type=partition, action="append", metavar="N", help="a partition (repeatable; default: all)"
        )
    else:
        parser.add_argument("--topic", required=required, metavar="NAME", help="the topic")
        parser.add_argument("--partition", type=partition, required=required, metavar="N", help="the partition")


def add_range(parser: argparse.ArgumentParser, *, times: bool = True) -> None:
    group = parser.add_argument_group("range (inclusive offsets; time: since inclusive, until exclusive)")
    group.add_argument("--from-offset", type=offset, metavar="OFFSET", help="first offset")
    group.add_argument("--to-offset", type=offset, metavar="OFFSET", help="last offset")
    if times:
        group.add_argument("--since", type=parse_time, metavar="TIME", help="records at or after (ms or ISO 8601)")
        group.add_argument("--until", type=parse_time, metavar="TIME", help="records before (ms or ISO 8601)")


def check_range(args: argparse.Namespace) -> None:
    if args.from_offset is not None and args.to_offset is not None and args.from_offset > args.to_offset:
        raise CliError(f"--from-offset {args.from_offset} is after --to-offset {args.to_offset}: nothing to select")
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since is not None and until is not None and since >= until:
        raise CliError("--since is not before --until: nothing to select")


def add_output(parser: argparse.ArgumentParser, choices: Sequence[str], default: str) -> None:
    parser.add_argument("--output", choices=list(choices), default=default, help=f"output format (default {default})")


def add_group(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--group", metavar="ID", help=help_text)


def add_kafka(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Kafka connection",
        f"Passwords are never flags: ${PASSWORD_ENV}, ${KEY_PASSWORD_ENV}, --secret-arn or --kafka-properties.",
    )
    group.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT,...",
        help="default: $KAFKA_BOOTSTRAP_SERVERS, then the config's selfManaged.bootstrapServers",
    )
    group.add_argument(
        "--kafka-properties",
        type=Path,
        metavar="FILE",
        help="a Kafka client properties file (Java names, e.g. sasl.jaas.config, ssl.truststore.location)",
    )
    group.add_argument("--security-protocol", choices=SECURITY_PROTOCOLS, help="default: derived from the rest")
    group.add_argument("--sasl-mechanism", choices=SASL_MECHANISMS, help="AWS_MSK_IAM: MSK IAM (OAUTHBEARER)")
    group.add_argument("--sasl-username", metavar="NAME", help=f"SASL user; the password is read from ${PASSWORD_ENV}")
    group.add_argument(
        "--secret-arn",
        metavar="ARN",
        help="a Secrets Manager secret as the event source mapping reads it: username/password, or "
        "certificate/privateKey for mTLS (default: the config's)",
    )
    group.add_argument(
        "--ssl-ca-location", metavar="FILE", help="PEM file of the CA that signed the brokers' certificates"
    )
    group.add_argument("--ssl-certificate-location", metavar="FILE", help="PEM client certificate (mTLS)")
    group.add_argument(
        "--ssl-key-location",
        metavar="FILE",
        help=f"PEM client key (mTLS); its password is read from ${KEY_PASSWORD_ENV}",
    )
    group.add_argument("--region", metavar="REGION", help="region for MSK IAM tokens (default: from the broker names)")


# ---------------------------------------------------------------------------------------------------------------------
# the deployment: config + stack outputs


@dataclass
class Deployment:
    """The deployment the flags refer to: its config (``--config``) and, when needed, its stack's outputs."""

    config: AppConfig | None
    clients: Clients
    _outputs: dict[str, str] | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace, clients: Clients) -> Deployment:
        path = getattr(args, "config", None)
        if path is None:
            return cls(None, clients)
        from infra.config import ConfigError, load_config

        try:
            config = load_config(path)
        except ConfigError as error:
            raise CliError(f"{error.problems[0]} (in {path}; {len(error.problems)} problem(s) in all)") from error
        if config.region and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            clients.region = config.region  # where the stack lives, unless the shell says otherwise
        return cls(config, clients)

    def output(self, name: str, flag: str) -> str:
        """A stack output, for a value the operator did not pass as ``flag``."""
        if self.config is None:
            raise CliError(f"pass {flag}, or --config FILE to read it from the deployed stack's outputs")
        if self._outputs is None:
            stack = self.config.stack_name
            described = self.clients.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
            self._outputs = {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs", [])}
        if name not in self._outputs:
            raise CliError(f"stack {self.config.stack_name} has no output {name}: pass {flag}")
        return self._outputs[name]

    def bucket(self, args: argparse.Namespace) -> str:
        return str(args.bucket) if args.bucket else self.output("ArchiveBucketName", "--bucket")

    def prefix(self, args: argparse.Namespace) -> str:
        if args.prefix is not None:
            return str(args.prefix)
        return self.config.archive.prefix if self.config else DEFAULT_PREFIX

    def topics(self, args: argparse.Namespace) -> list[str]:
        if args.topic:
            return list(args.topic) if isinstance(args.topic, list) else [args.topic]
        return list(self.config.event_source.topics) if self.config else []

    def group_for(self, topic: str, flag: str | None) -> str | None:
        if flag:
            return flag
        return self.config.event_source.consumer_group_for(topic) if self.config else None

    def queue(self, value: str | None, output: str, flag: str) -> str | None:
        """A queue URL: the flag ('' for none), else the stack's output when a config is given, else none."""
        if value is not None:
            return value or None
        if self.config is None:
            return None
        if output == "OnFailureQueueUrl" and self.config.event_source.on_failure != "queue":
            return None
        return self.output(output, flag)

    # -- Kafka ------------------------------------------------------------------------------------------------------

    def kafka(self, args: argparse.Namespace) -> KafkaConnection:
        """Where and how to connect: the config's source as the mapping connects, then the properties file, then
        flags and environment variables."""
        connection = self._from_config()
        if args.kafka_properties is not None:
            from_file = from_properties(read_properties(args.kafka_properties))
            connection = connection.merged(**{k: v for k, v in vars(from_file).items() if v not in (None, {}, "")})
        servers = args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        connection = connection.merged(
            bootstrap_servers=servers,
            security_protocol=args.security_protocol,
            sasl_mechanism=args.sasl_mechanism,
            sasl_username=args.sasl_username,
            sasl_password=os.environ.get(PASSWORD_ENV) if args.sasl_username else None,
            ssl_ca_location=args.ssl_ca_location,
            ssl_certificate_location=args.ssl_certificate_location,
            ssl_key_location=args.ssl_key_location,
            ssl_key_password=os.environ.get(KEY_PASSWORD_ENV) if args.ssl_key_location else None,
            region=args.region,
        )
        secret = args.secret_arn or self._config_secret()
        has_credentials = args.sasl_username or connection.sasl_password or connection.ssl_key_location
        if secret and not has_credentials and connection.sasl_mechanism != MSK_IAM:
            connection = self._with_secret(connection, secret)
        ca_secret = self._config_ca_secret()
        tls = connection.protocol in ("SSL", "SASL_SSL")
        if ca_secret and tls and not (connection.ssl_ca_location or connection.ssl_ca_pem):
            connection = connection.merged(ssl_ca_pem=self._secret(ca_secret).get("certificate"))
        connection.check()
        return connection

    def _from_config(self) -> KafkaConnection:
        config = self.config
        if config is None:
            return KafkaConnection()
        if config.msk is not None:
            if config.msk.auth == "iam":
                return KafkaConnection(security_protocol="SASL_SSL", sasl_mechanism=MSK_IAM, region=config.region)
            return KafkaConnection(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512")
        source = config.self_managed
        assert source is not None
        servers = ",".join(source.bootstrap_servers)
        mechanisms = {"sasl-scram-256": "SCRAM-SHA-256", "sasl-scram-512": "SCRAM-SHA-512", "plain": "PLAIN"}
        if source.auth in mechanisms:
            return KafkaConnection(
                bootstrap_servers=servers, security_protocol="SASL_SSL", sasl_mechanism=mechanisms[source.auth]
            )
        if source.auth == "mtls":
            return KafkaConnection(bootstrap_servers=servers, security_protocol="SSL")
        return KafkaConnection(bootstrap_servers=servers)

    def _config_secret(self) -> str | None:
        config = self.config
        if config is None:
            return None
        source = config.msk or config.self_managed
        return source.secret_arn if source is not None else None

    def _config_ca_secret(self) -> str | None:
        source = self.config.self_managed if self.config else None
        return source.root_ca_secret_arn if source is not None else None

    def _secret(self, arn: str) -> dict[str, Any]:
        value = self.clients.client("secretsmanager").get_secret_value(SecretId=arn)
        try:
            document = json.loads(value.get("SecretString") or "")
        except ValueError as error:
            raise CliError(f"secret {arn} is not JSON as the event source mapping expects") from error
        if not isinstance(document, dict):
            raise CliError(f"secret {arn} is not a JSON object as the event source mapping expects")
        return document

    def _with_secret(self, connection: KafkaConnection, arn: str) -> KafkaConnection:
        document = self._secret(arn)
        if "username" in document and "password" in document:
            return connection.merged(sasl_username=document["username"], sasl_password=document["password"])
        if "certificate" in document and "privateKey" in document:
            return connection.merged(
                security_protocol=connection.security_protocol or "SSL",
                ssl_certificate_pem=document["certificate"],
                ssl_key_pem=document["privateKey"],
                ssl_key_password=document.get("privateKeyPassword"),
            )
        raise CliError(f"secret {arn} has neither username/password nor certificate/privateKey")


class Clients:
    """boto3 clients, created on first use with the standard AWS configuration (``AWS_PROFILE``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL*``). Tests replace ``factory``."""

    def __init__(self, factory: Any = None, *, region: str | None = None) -> None:
        self._factory = factory
        self.region = region
        self._made: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._made:
            if self._factory is not None:
                self._made[service] = self._factory(service)
            else:
                import boto3
                from botocore.config import Config

                # Standard retries (AWS_MAX_ATTEMPTS, default 3): rides out throttling without minutes of silence
                # when an endpoint is simply unreachable.
                config = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=60)
                self._made[service] = boto3.client(service, config=config, region_name=self.region)
        return self._made[service]
