"""Kafka client security for replay, backfill and verify, at the client-configuration level: flags, a Kafka-style
properties file (Java names translated to librdkafka's, unknown ones refused), Secrets Manager secrets in the event
source mapping's format, and MSK IAM through the AWS signer.

What these tests do NOT prove: that a broker accepts the settings. The local broker (Tansu 0.6) offers no SASL
mechanism and no TLS listener (measured: SASL handshakes fail with NoSharedMechanism, and `--cert` leaves the
listener in plaintext), so SASL/PLAIN, SCRAM and MSK IAM are checked here as the librdkafka settings they produce;
TLS and mTLS are also proven end to end through a TLS proxy in front of Tansu (test_kafka_tls.py). The MSK IAM
token below is made by the real AWS signer (it signs locally; no AWS call), from dummy credentials.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from archive_ops.cli import build_parser, main
from archive_ops.cli.options import Clients, Deployment
from archive_ops.kafka_client import (
    KafkaConnection,
    KafkaSettingsError,
    from_properties,
    read_properties,
    redacted,
)
from tests.unit.aws_fakes import FakeAws

SECRET = "s3cr3t-Pa55"


def kafka_args(*flags: str) -> argparse.Namespace:
    """The parsed flags of `kafka-s3-archiver replay` (every Kafka flag is shared by replay, backfill, verify)."""
    return build_parser().parse_args(["replay", "--topic", "t", "--target-topic", "u", *flags])


def connection(*flags: str, config: Any = None, clients: Clients | None = None) -> KafkaConnection:
    return Deployment(config, clients or Clients()).kafka(kafka_args(*flags))


def write(tmp_path: Path, text: str, name: str = "client.properties") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- flags -------------------------------------------------------------------------------------------------------------


def test_plaintext_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    settings = connection().client_settings()
    assert settings == {"bootstrap.servers": "k1:9092,k2:9092", "security.protocol": "PLAINTEXT"}
    assert connection("--bootstrap-servers", "k3:9092").bootstrap_servers == "k3:9092"  # the flag wins


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_user_and_password_from_the_environment(monkeypatch: pytest.MonkeyPatch, mechanism: str) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    flags = ["--bootstrap-servers", "b:9096", "--sasl-mechanism", mechanism, "--sasl-username", "archiver"]
    settings = connection(*flags).client_settings()
    assert settings["security.protocol"] == "SASL_PLAINTEXT"  # no CA given: --security-protocol SASL_SSL for TLS
    assert (settings["sasl.mechanism"], settings["sasl.username"], settings["sasl.password"]) == (
        mechanism,
        "archiver",
        SECRET,
    )
    tls = connection(*flags, "--security-protocol", "SASL_SSL").client_settings()
    assert tls["security.protocol"] == "SASL_SSL"
    assert tls["ssl.endpoint.identification.algorithm"] == "https"


def test_tls_with_a_private_ca_and_mtls(tmp_path: Path) -> None:
    ca, cert, key = (write(tmp_path, "-----BEGIN CERTIFICATE-----\n", name) for name in ("ca.pem", "c.pem", "k.pem"))
    settings = connection("--bootstrap-servers", "b:9094", "--ssl-ca-location", str(ca)).client_settings()
    assert settings["security.protocol"] == "SSL"
    assert settings["ssl.ca.location"] == str(ca)
    mtls = connection(
        "--bootstrap-servers", "b:9094", "--ssl-certificate-location", str(cert), "--ssl-key-location", str(key)
    ).client_settings()
    assert (mtls["security.protocol"], mtls["ssl.certificate.location"], mtls["ssl.key.location"]) == (
        "SSL",
        str(cert),
        str(key),
    )


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--sasl-mechanism", "SCRAM-SHA-512"], "needs a user name and password"),
        (["--security-protocol", "SASL_SSL"], "needs a SASL mechanism"),
        (["--security-protocol", "PLAINTEXT", "--sasl-mechanism", "PLAIN"], "needs --security-protocol SASL_SSL"),
        (["--sasl-mechanism", "AWS_MSK_IAM", "--security-protocol", "SASL_PLAINTEXT"], "MSK IAM authentication needs"),
        (["--ssl-certificate-location", "c.pem"], "needs its private key"),
        (["--ssl-ca-location", "/nonexistent/ca.pem"], "no such file"),
        (["--security-protocol", "PLAINTEXT", "--ssl-ca-location", "ca.pem"], "does not use TLS"),
    ],
)
def test_contradictions_are_refused_with_how_to_fix(
    flags: list[str], fragment: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(KafkaSettingsError, match=fragment):
        connection("--bootstrap-servers", "b:9092", *flags)


# -- a Kafka-style properties file -------------------------------------------------------------------------------------


def test_java_client_properties_are_translated(tmp_path: Path) -> None:
    properties = write(
        tmp_path,
        "# the same file kafka-console-consumer.sh --consumer.config reads\n"
        "bootstrap.servers=b-1.example:9096,b-2.example:9096\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        f'    username="archiver" password="{SECRET}";\n'
        f"ssl.truststore.location={tmp_path / 'ca.pem'}\n"
        "ssl.truststore.type=PEM\n"
        "ssl.endpoint.identification.algorithm=\n"
        "client.id=restore-1\n",
    )
    (tmp_path / "ca.pem").write_text("x")
    settings = connection("--kafka-properties", str(properties)).client_settings()
    assert settings == {
        "bootstrap.servers": "b-1.example:9096,b-2.example:9096",
        "client.id": "restore-1",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "archiver",
        "sasl.password": SECRET,
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_flags_override_the_properties_file(tmp_path: Path) -> None:
    properties = write(tmp_path, "bootstrap.servers=old:9092\nsecurity.protocol=PLAINTEXT\n")
    settings = connection("--kafka-properties", str(properties), "--bootstrap-servers", "new:9092").client_settings()
    assert settings["bootstrap.servers"] == "new:9092"


def test_pkcs12_keystore_and_pem_strings(tmp_path: Path) -> None:
    store = write(tmp_path, "binary", "client.p12")
    settings = from_properties(
        {
            "bootstrap.servers": "b:9094",
            "security.protocol": "SSL",
            "ssl.keystore.location": str(store),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.password": SECRET,
            "ssl.truststore.certificates": "-----BEGIN CERTIFICATE-----",
        }
    ).client_settings()
    assert settings["ssl.keystore.location"] == str(store)
    assert settings["ssl.keystore.password"] == SECRET
    assert settings["ssl.ca.pem"] == "-----BEGIN CERTIFICATE-----"


@pytest.mark.parametrize(
    ("properties", "fragment"),
    [
        ({"sasl.kerberos.service.name": "kafka"}, "Kerberos"),
        ({"bootstrap.server": "b:9092"}, "'bootstrap.server' is not a client property"),
        ({"ssl.truststore.location": "x.jks", "ssl.truststore.type": "JKS"}, "JKS is not readable by librdkafka"),
        ({"ssl.keystore.type": "JKS"}, "keytool"),
        ({"sasl.jaas.config": "com.example.Custom required;"}, "not supported"),
        ({"sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required;"}, "username="),
        ({"sasl.client.callback.handler.class": "com.example.Handler"}, "only MSK IAM's handlers"),
    ],
)
def test_unknown_or_unusable_properties_are_refused(properties: dict[str, str], fragment: str) -> None:
    with pytest.raises(KafkaSettingsError, match=fragment):
        from_properties(properties)


def test_properties_file_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "! comment\na = 1\nb:2\n  c=three \\\n   four\n\nempty=\n")
    assert read_properties(path) == {"a": "1", "b": "2", "c": "three four", "empty": ""}
    with pytest.raises(KafkaSettingsError, match="cannot read the Kafka properties file"):
        read_properties(tmp_path / "missing.properties")


# -- MSK IAM -----------------------------------------------------------------------------------------------------------


def test_msk_iam_from_a_java_properties_file_uses_the_aws_signer(fake_aws_env: None) -> None:
    """The real signer (aws-msk-iam-sasl-signer-python) signs locally with the dummy credentials: a presigned
    kafka-cluster:Connect request for the brokers' region, which is what MSK verifies."""
    msk = from_properties(
        {
            "bootstrap.servers": "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "AWS_MSK_IAM",
            "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
            "sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        }
    )
    settings = msk.client_settings()
    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "OAUTHBEARER"
    token, expiry = settings["oauth_cb"]("")
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert "X-Amz-Signature" in query
    assert query["X-Amz-Credential"][0].startswith("testing/")
    assert expiry > 1_000_000_000  # epoch seconds, as librdkafka wants
    assert redacted(settings)["oauth_cb"] == "[redacted]"


def test_msk_iam_flag_with_a_role_and_region(fake_aws_env: None) -> None:
    calls: list[str] = []

    def provider(region: str) -> tuple[str, float]:
        calls.append(region)
        return "token", 1.0

    msk = connection("--bootstrap-servers", "broker:9098", "--sasl-mechanism", "AWS_MSK_IAM", "--region", "eu-north-1")
    assert msk.protocol == "SASL_SSL"
    assert msk.client_settings(token_provider=provider)["oauth_cb"]("") == ("token", 1.0)
    assert calls == ["eu-north-1"]
    jaas = from_properties(
        {"sasl.jaas.config": 'software.amazon.msk.auth.iam.IAMLoginModule required awsRoleArn="arn:aws:iam::1:role/r";'}
    )
    assert (jaas.sasl_mechanism, jaas.msk_iam_role_arn) == ("AWS_MSK_IAM", "arn:aws:iam::1:role/r")


# -- from the deployment config and Secrets Manager --------------------------------------------------------------------


def test_the_config_gives_servers_and_the_mappings_authentication(aws: FakeAws, tmp_path: Path) -> None:
    """--config: the self-managed servers and auth kind, and the secret the event source mapping reads."""
    from infra.config import load_config

    clients = Clients()
    arn = clients.client("secretsmanager").create_secret(
        Name="kafka/archiver", SecretString=json.dumps({"username": "archiver", "password": SECRET})
    )["ARN"]
    ca = clients.client("secretsmanager").create_secret(
        Name="kafka/root-ca", SecretString=json.dumps({"certificate": "-----BEGIN CERTIFICATE-----\nCA"})
    )["ARN"]
    document = json.loads(Path("config/self-managed.example.json").read_text())
    document["region"] = "us-east-1"
    document["selfManaged"].update(secretArn=arn, rootCaSecretArn=ca)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    settings = connection(config=load_config(path), clients=clients).client_settings()
    assert settings["bootstrap.servers"] == "b-1.kafka.internal.example.com:9096,b-2.kafka.internal.example.com:9096"
    assert (settings["security.protocol"], settings["sasl.mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (settings["sasl.username"], settings["sasl.password"]) == ("archiver", SECRET)
    assert settings["ssl.ca.pem"] == "-----BEGIN CERTIFICATE-----\nCA"

    mtls = clients.client("secretsmanager").create_secret(
        Name="kafka/client", SecretString=json.dumps({"certificate": "CERT", "privateKey": "KEY"})
    )["ARN"]
    cert = connection("--bootstrap-servers", "b:9094", "--secret-arn", mtls, clients=clients).client_settings()
    assert (cert["security.protocol"], cert["ssl.certificate.pem"], cert["ssl.key.pem"]) == ("SSL", "CERT", "KEY")


def test_msk_iam_is_the_default_for_an_msk_iam_config() -> None:
    from infra.config import load_config

    msk = connection("--bootstrap-servers", "b:9098", config=load_config("config/msk.example.json"))
    assert (msk.protocol, msk.sasl_mechanism, msk.msk_region()) == ("SASL_SSL", "AWS_MSK_IAM", "eu-west-1")


# -- secrets are never shown -------------------------------------------------------------------------------------------


def test_secrets_are_never_printed(
    aws: FakeAws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", SECRET)
    flags = ["--bootstrap-servers", "b:9092", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "archiver"]
    scram = connection(*flags)
    assert SECRET not in scram.describe()
    assert SECRET not in repr(scram)
    assert SECRET not in json.dumps(redacted(scram.client_settings()))
    # A command that fails after reading the password: the error names what is wrong, never the password.
    code = main(["replay", "--bucket", "no-such-bucket", "--topic", "t", "--target-topic", "u", *flags])
    captured = capsys.readouterr()
    assert code == 2
    assert SECRET not in captured.out + captured.err
