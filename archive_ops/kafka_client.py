"""How the operator tools connect to Kafka: bootstrap servers plus security (TLS, mTLS, SASL/PLAIN, SASL/SCRAM,
MSK IAM), from flags or a Kafka-style client properties file, turned into librdkafka (confluent-kafka) settings.

Java client property names are translated to librdkafka's (``sasl.jaas.config`` -> ``sasl.username`` /
``sasl.password``, a PEM ``ssl.truststore.location`` -> ``ssl.ca.location``, ...); librdkafka's own names for the
same settings are accepted too; anything else is rejected with a message naming the property, so a typo never
silently connects without TLS.

MSK IAM uses the AWS-maintained signer (PyPI ``aws-msk-iam-sasl-signer-python``) through SASL/OAUTHBEARER: the
mechanism is spelled ``AWS_MSK_IAM`` as in the Java client, and librdkafka calls ``oauth_cb`` for a fresh token.

Secrets (passwords, private keys, tokens) never appear in ``describe()`` or in an error message: they are only ever
placed in the settings handed to librdkafka.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM")
MSK_IAM = "AWS_MSK_IAM"
PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # noqa: S105 (the name of a variable, not a secret)
KEY_PASSWORD_ENV = "KAFKA_SSL_KEY_PASSWORD"  # noqa: S105
SECRET_SETTINGS = frozenset({"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem"})

# Java client (and librdkafka) property names this module understands; everything else is refused.
_PASS_THROUGH = frozenset(
    {
        "bootstrap.servers",
        "security.protocol",
        "client.id",
        "request.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "reconnect.backoff.ms",
        "reconnect.backoff.max.ms",
        "retry.backoff.ms",
        "metadata.max.age.ms",
        "connections.max.idle.ms",
        "ssl.cipher.suites",
        # librdkafka's own names for what the Java names below translate to
        "sasl.username",
        "sasl.password",
        "ssl.ca.location",
        "ssl.ca.pem",
        "ssl.certificate.location",
        "ssl.certificate.pem",
        "ssl.key.location",
        "ssl.key.pem",
        "ssl.key.password",
    }
)
_MSK_IAM_CLASSES = (
    "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
    "software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler",
)
_JAAS = re.compile(r"^\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\s*(.*?);?\s*$", re.DOTALL)
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"|(\w+)\s*=\s*(\S+)')
_MSK_HOST_REGION = re.compile(r"\.kafka(?:-serverless)?\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com")


class KafkaSettingsError(ValueError):
    """The Kafka connection settings are incomplete or contradict each other; the message says how to fix them."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where and how to connect. Build it from a properties file and/or flags, then call ``client_settings()``."""

    bootstrap_servers: str = ""
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None
    ssl_ca_pem: str | None = field(default=None, repr=False)
    ssl_certificate_location: str | None = None
    ssl_certificate_pem: str | None = field(default=None, repr=False)
    ssl_key_location: str | None = None
    ssl_key_pem: str | None = field(default=None, repr=False)
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_keystore_location: str | None = None  # PKCS#12 (librdkafka reads it natively)
    ssl_keystore_password: str | None = field(default=None, repr=False)
    verify_hostname: bool = True
    msk_iam_profile: str | None = None
    msk_iam_role_arn: str | None = None
    region: str | None = None  # for MSK IAM; default: from the broker host name, then the AWS configuration
    extra: Mapping[str, str] = field(default_factory=dict)  # pass-through settings (timeouts, client.id)

    def merged(self, **changes: Any) -> KafkaConnection:
        """A copy with every non-None value of ``changes`` applied (flags over the properties file)."""
        return replace(self, **{name: value for name, value in changes.items() if value is not None})

    # -- checks ---------------------------------------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        """The security protocol, defaulted from what else is set (a mechanism means SASL, a CA or cert means TLS)."""
        if self.security_protocol:
            return self.security_protocol
        tls = any((self.ssl_ca_location, self.ssl_ca_pem, self.ssl_certificate_location, self.ssl_certificate_pem))
        if self.sasl_mechanism:
            return "SASL_SSL" if tls or self.sasl_mechanism == MSK_IAM else "SASL_PLAINTEXT"
        return "SSL" if tls or self.ssl_keystore_location else "PLAINTEXT"

    def problems(self) -> list[str]:
        problems = []
        protocol = self.protocol
        if not self.bootstrap_servers:
            problems.append(
                "no Kafka bootstrap servers: pass --bootstrap-servers HOST:PORT, set KAFKA_BOOTSTRAP_SERVERS, or "
                "bootstrap.servers in --kafka-properties"
            )
        if protocol not in SECURITY_PROTOCOLS:
            problems.append(f"security protocol must be one of {', '.join(SECURITY_PROTOCOLS)}; got {protocol!r}")
        sasl = protocol.startswith("SASL_")
        if self.sasl_mechanism and self.sasl_mechanism not in SASL_MECHANISMS:
            problems.append(f"SASL mechanism must be one of {', '.join(SASL_MECHANISMS)}; got {self.sasl_mechanism!r}")
        if sasl and not self.sasl_mechanism:
            problems.append(f"{protocol} needs a SASL mechanism: --sasl-mechanism {' | '.join(SASL_MECHANISMS)}")
        if self.sasl_mechanism and not sasl:
            problems.append(
                f"--sasl-mechanism {self.sasl_mechanism} needs --security-protocol SASL_SSL (or SASL_PLAINTEXT); "
                f"got {protocol}"
            )
        if self.sasl_mechanism == MSK_IAM and protocol != "SASL_SSL":
            problems.append("MSK IAM authentication needs --security-protocol SASL_SSL (MSK's IAM listener is TLS)")
        needs_password = sasl and self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        if needs_password and (not self.sasl_username or self.sasl_password is None):
            problems.append(
                f"SASL {self.sasl_mechanism} needs a user name and password: --sasl-username with the password "
                f"in ${PASSWORD_ENV}, --secret-arn (a Secrets Manager secret with username and password), or "
                "sasl.jaas.config in --kafka-properties"
            )
        if (self.sasl_username or self.sasl_password) and self.sasl_mechanism in (None, MSK_IAM):
            problems.append("a SASL user name or password needs --sasl-mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        has_cert = bool(self.ssl_certificate_location or self.ssl_certificate_pem)
        has_key = bool(self.ssl_key_location or self.ssl_key_pem)
        if has_cert != has_key:
            problems.append(
                "a client certificate needs its private key and the other way round: --ssl-certificate-location "
                "with --ssl-key-location"
            )
        tls_material = (
            has_cert or has_key or bool(self.ssl_ca_location or self.ssl_ca_pem or self.ssl_keystore_location)
        )
        if tls_material and protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            problems.append(f"TLS certificates are set but the security protocol {protocol} does not use TLS")
        for what, path in (
            ("--ssl-ca-location", self.ssl_ca_location),
            ("--ssl-certificate-location", self.ssl_certificate_location),
            ("--ssl-key-location", self.ssl_key_location),
            ("ssl.keystore.location", self.ssl_keystore_location),
        ):
            if path and not Path(path).is_file():
                problems.append(f"{what}: no such file {path!r}")
        return problems

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise KafkaSettingsError("; ".join(problems))

    # -- librdkafka ------------------------------------------------------------------------------------------------

    def client_settings(self, *, token_provider: Callable[[str], tuple[str, float]] | None = None) -> dict[str, Any]:
        """librdkafka settings (secrets included: hand them to the client, never print them).

        ``token_provider(region)`` returns an MSK IAM token and its expiry (epoch seconds); the default is the AWS
        signer with this connection's profile or role.
        """
        self.check()
        settings: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, **self.extra}
        protocol = self.protocol
        settings["security.protocol"] = protocol
        if protocol.startswith("SASL_"):
            if self.sasl_mechanism == MSK_IAM:
                settings["sasl.mechanism"] = "OAUTHBEARER"
                region = self.msk_region()
                provider = token_provider or self._signer()

                def oauth_cb(_config: str) -> tuple[str, float]:
                    return provider(region)

                settings["oauth_cb"] = oauth_cb
            else:
                settings["sasl.mechanism"] = self.sasl_mechanism
                settings["sasl.username"] = self.sasl_username
                settings["sasl.password"] = self.sasl_password
        if protocol in ("SSL", "SASL_SSL"):
            optional = {
                "ssl.ca.location": self.ssl_ca_location,
                "ssl.ca.pem": self.ssl_ca_pem,
                "ssl.certificate.location": self.ssl_certificate_location,
                "ssl.certificate.pem": self.ssl_certificate_pem,
                "ssl.key.location": self.ssl_key_location,
                "ssl.key.pem": self.ssl_key_pem,
                "ssl.key.password": self.ssl_key_password,
                "ssl.keystore.location": self.ssl_keystore_location,
                "ssl.keystore.password": self.ssl_keystore_password,
            }
            settings.update({name: value for name, value in optional.items() if value is not None})
            settings["ssl.endpoint.identification.algorithm"] = "https" if self.verify_hostname else "none"
        return settings

    def msk_region(self) -> str:
        """The region MSK IAM tokens are signed for: set, from the broker host name, or the AWS configuration."""
        if self.region:
            return self.region
        match = _MSK_HOST_REGION.search(self.bootstrap_servers)
        if match:
            return match.group(1)
        import boto3  # the AWS configuration's region (AWS_REGION, the profile)

        region = boto3.session.Session(profile_name=self.msk_iam_profile).region_name
        if not region:
            raise KafkaSettingsError(
                "MSK IAM needs the cluster's region: set AWS_REGION, or use the brokers' MSK host names"
            )
        return str(region)

    def _signer(self) -> Callable[[str], tuple[str, float]]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        profile, role = self.msk_iam_profile, self.msk_iam_role_arn

        def provide(region: str) -> tuple[str, float]:
            if role:
                token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_role_arn(region, role)
            elif profile:
                token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_profile(region, profile)
            else:
                token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
            return token, expiry_ms / 1000  # librdkafka wants the expiry in seconds

        return provide

    def describe(self) -> str:
        """One line for the operator: where and how, without any secret."""
        parts = [self.bootstrap_servers or "(no servers)", self.protocol]
        if self.sasl_mechanism:
            parts.append(self.sasl_mechanism + (f" as {self.sasl_username}" if self.sasl_username else ""))
        if self.ssl_certificate_location or self.ssl_certificate_pem or self.ssl_keystore_location:
            parts.append("client certificate")
        if self.ssl_ca_location or self.ssl_ca_pem:
            parts.append("private CA")
        return ", ".join(parts)


def redacted(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` safe to print: secret values and callbacks replaced."""
    return {
        name: "[redacted]" if name in SECRET_SETTINGS or callable(value) else value for name, value in settings.items()
    }


# ---------------------------------------------------------------------------------------------------------------------
# Kafka-style client properties files


def read_properties(path: Path) -> dict[str, str]:
    """A Java ``.properties`` file: ``key=value`` or ``key: value`` lines, ``#``/``!`` comments, continuations."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KafkaSettingsError(f"cannot read the Kafka properties file {str(path)!r}: {error.strerror}") from error
    properties: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.strip() if not logical else raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical += line[:-1]
            continue
        logical += line
        match = re.match(r"^((?:[^=:\s\\]|\\.)+)\s*[=:\s]\s*(.*)$", logical)
        if match:
            properties[match.group(1).replace("\\", "")] = match.group(2)
        elif logical:
            properties[logical] = ""
        logical = ""
    return properties


def from_properties(properties: Mapping[str, str], *, source: str = "--kafka-properties") -> KafkaConnection:
    """Translate client properties (Java names, or librdkafka's for the same settings) into a ``KafkaConnection``."""
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    problems: list[str] = []
    truststore_type = properties.get("ssl.truststore.type", "PEM").upper()
    keystore_type = properties.get("ssl.keystore.type", "PKCS12" if "ssl.keystore.location" in properties else "PEM")
    for name, value in properties.items():
        if name == "bootstrap.servers":
            values["bootstrap_servers"] = value
        elif name == "security.protocol":
            values["security_protocol"] = value.upper()
        elif name == "sasl.mechanism":
            values["sasl_mechanism"] = value.upper()
        elif name == "sasl.jaas.config":
            problems.extend(_jaas(value, values, source))
        elif name in ("sasl.client.callback.handler.class", "sasl.login.callback.handler.class"):
            if value not in _MSK_IAM_CLASSES:
                problems.append(f"{source}: {name}={value} is a Java class; only MSK IAM's handlers are understood")
            else:
                values["sasl_mechanism"] = MSK_IAM
        elif name in ("sasl.username", "sasl.password"):
            values[name.replace(".", "_")] = value
        elif name in ("ssl.truststore.location", "ssl.ca.location"):
            if name == "ssl.truststore.location" and truststore_type != "PEM":
                problems.append(_store_problem(source, "ssl.truststore", truststore_type))
            values["ssl_ca_location"] = value
        elif name in ("ssl.truststore.certificates", "ssl.ca.pem"):
            values["ssl_ca_pem"] = value
        elif name == "ssl.truststore.type":
            if value.upper() != "PEM":
                problems.append(_store_problem(source, "ssl.truststore", value))
        elif name == "ssl.truststore.password":
            problems.append(f"{source}: ssl.truststore.password: a PEM trust store has no password; remove it")
        elif name == "ssl.keystore.type":
            if value.upper() not in ("PKCS12", "PEM"):
                problems.append(_store_problem(source, "ssl.keystore", value))
        elif name == "ssl.keystore.location":
            if keystore_type.upper() == "PEM":  # one PEM file with the certificate and its key
                values["ssl_certificate_location"] = values["ssl_key_location"] = value
            elif keystore_type.upper() == "PKCS12":
                values["ssl_keystore_location"] = value
        elif name == "ssl.keystore.password":
            values["ssl_keystore_password"] = value
        elif name in ("ssl.keystore.certificate.chain", "ssl.certificate.pem"):
            values["ssl_certificate_pem"] = value
        elif name in ("ssl.keystore.key", "ssl.key.pem"):
            values["ssl_key_pem"] = value
        elif name in ("ssl.certificate.location", "ssl.key.location", "ssl.key.password"):
            values[name.replace(".", "_")] = value
        elif name == "ssl.endpoint.identification.algorithm":
            values["verify_hostname"] = value.lower() == "https"
        elif name in _PASS_THROUGH:
            extra[name] = value
        else:
            problems.append(f"{source}: {name!r} is not a client property these tools understand{_hint(name)}")
    if problems:
        raise KafkaSettingsError("; ".join(problems))
    return KafkaConnection(**values, extra=extra)


def _jaas(text: str, values: dict[str, Any], source: str) -> list[str]:
    match = _JAAS.match(text)
    if not match:
        return [f"{source}: sasl.jaas.config is not '<LoginModule> required <options>;'"]
    module, options_text = match.group(1), match.group(3)
    options = {
        (m.group(1) or m.group(3)): (m.group(2) if m.group(1) else m.group(4)).replace('\\"', '"')
        for m in _JAAS_OPTION.finditer(options_text)
    }
    if module.endswith(("ScramLoginModule", "PlainLoginModule")):
        if "username" not in options or "password" not in options:
            return [f'{source}: sasl.jaas.config {module} needs username="..." and password="..."']
        values["sasl_username"], values["sasl_password"] = options["username"], options["password"]
        return []
    if module == "software.amazon.msk.auth.iam.IAMLoginModule":
        values["sasl_mechanism"] = MSK_IAM
        values["msk_iam_profile"] = options.get("awsProfileName")
        values["msk_iam_role_arn"] = options.get("awsRoleArn")
        return []
    return [f"{source}: sasl.jaas.config login module {module} is not supported (SCRAM, PLAIN or MSK IAM)"]


def _store_problem(source: str, name: str, kind: str) -> str:
    return (
        f"{source}: {name}.type {kind} is not readable by librdkafka; use PEM files (ssl.truststore.location) or a "
        "PKCS12 keystore; convert a JKS store with keytool -importkeystore -deststoretype PKCS12"
    )


def _hint(name: str) -> str:
    if name.startswith(("sasl.kerberos", "sasl.oauthbearer")):
        return " (Kerberos and generic OAUTHBEARER are not supported; MSK IAM is sasl.mechanism=AWS_MSK_IAM)"
    return " (remove it, or see docs/operations.md, Kafka connection)"
