"""TLS and mTLS end to end: `kafka-s3-archiver verify` reaches a real Kafka-protocol broker over TLS with a private CA
(and, for mTLS, a client certificate), and fails with one line when the CA or the certificate is missing.

Tansu 0.6, the local broker, has no working TLS listener (measured: with `--cert` it still listens in plaintext), so
TLS is terminated by a small proxy in front of it (Python's ssl module, below): the client side of the connection,
which is what the command configures, is real TLS to a real broker. Tansu advertises the proxy's address, so every
connection librdkafka makes after the bootstrap goes through TLS too. SASL cannot be shown end to end here (Tansu's
SASL handshake offers no mechanism); test_kafka_client.py checks it at the client-configuration level.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from archive_ops.cli import main
from local import stack
from tests.ops.archive_builder import archive_batches
from tests.unit.aws_fakes import BUCKET, FakeAws

pytestmark = pytest.mark.e2e


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _issue(
    name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, server: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        # Key identifiers: what Python 3.13's strict X.509 verification (VERIFY_X509_STRICT) asks of a chain.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=issuer is not None,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=issuer is None,
                crl_sign=issuer is None,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("test CA", None)
    server_cert, server_key = _issue("broker", (ca_cert.subject, ca_key), server=True)
    client_cert, client_key = _issue("archiver", (ca_cert.subject, ca_key))

    def save(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    return Pki(
        ca=save("ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM)),
        server_cert=save("server.pem", server_cert.public_bytes(serialization.Encoding.PEM)),
        server_key=save("server.key", key_pem(server_key)),
        client_cert=save("client.pem", client_cert.public_bytes(serialization.Encoding.PEM)),
        client_key=save("client.key", key_pem(client_key)),
    )


class TlsProxy:
    """Accepts TLS on ``port`` (optionally requiring a client certificate) and relays bytes to a plaintext broker."""

    def __init__(self, pki: Pki, upstream: int, port: int, *, require_client_cert: bool) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        if require_client_cert:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(pki.ca)
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = port
        self.handshakes_failed = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            raw.close()
            return
        broker = socket.create_connection(("127.0.0.1", self.upstream))
        threading.Thread(target=self._pump, args=(broker, secure), daemon=True).start()
        self._pump(secure, broker)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                end.close()

    def close(self) -> None:
        self._stop = True
        self.listener.close()


@dataclass
class TlsBroker:
    proxy: TlsProxy
    plaintext: str


def tls_broker(pki: Pki, *, require_client_cert: bool) -> Iterator[TlsBroker]:
    """Tansu listening on a free port, advertising the TLS proxy in front of it; stopped by PID afterwards."""
    listen, proxy_port = stack.free_port(), stack.free_port()
    tansu = stack.install_tansu()
    process = subprocess.Popen(
        [
            str(tansu),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{listen}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{proxy_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = None
    try:
        deadline = time.monotonic() + 20
        while not stack.tcp_reachable("127.0.0.1", listen) and time.monotonic() < deadline:
            time.sleep(0.1)
        proxy = TlsProxy(pki, listen, proxy_port, require_client_cert=require_client_cert)
        yield TlsBroker(proxy, f"127.0.0.1:{listen}")
    finally:
        if proxy is not None:
            proxy.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def tls(pki: Pki) -> Iterator[TlsBroker]:
    yield from tls_broker(pki, require_client_cert=False)


@pytest.fixture
def mtls(pki: Pki) -> Iterator[TlsBroker]:
    yield from tls_broker(pki, require_client_cert=True)


def make_topic(broker: TlsBroker, pki: Pki, topic: str) -> None:
    """Five records in partition 0, produced through the TLS proxy (the broker advertises only the proxy)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    settings: dict[str, str | int | float | bool] = {
        "bootstrap.servers": f"127.0.0.1:{broker.proxy.port}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key),
    }
    admin = AdminClient(settings)  # kept alive until the futures are done
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)
    producer = Producer(settings)
    for offset in range(5):
        producer.produce(topic, value=f"v{offset}".encode(), partition=0)
    assert producer.flush(30) == 0


def verify(port: int, *flags: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = ["verify", "--bucket", BUCKET, "--dead-letter-queue-url", "", "--topic", "orders", "--expect", "high"]
    code = main([*argv, "--bootstrap-servers", f"127.0.0.1:{port}", *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verify_over_tls_with_a_private_ca(
    aws: FakeAws, tls: TlsBroker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    archive_batches(aws, partitions=(0,), batches=1, batch_size=5)  # orders-0 offsets 0..4
    make_topic(tls, pki, "orders")
    code, out, err = verify(tls.proxy.port, "--ssl-ca-location", str(pki.ca), capsys=capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["complete"] is True
    assert report["partitions"][0]["expected"] == [0, 4]  # the broker's offsets, read over TLS
    assert "SSL" in err  # the connection line says how it connected

    code, _, err = verify(tls.proxy.port, "--security-protocol", "SSL", capsys=capsys)  # the system CAs only
    assert code == 2
    assert "Kafka error" in err
    assert "Traceback" not in err


def test_verify_over_mtls_with_a_client_certificate(
    aws: FakeAws, mtls: TlsBroker, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    archive_batches(aws, partitions=(0,), batches=1, batch_size=5)
    make_topic(mtls, pki, "orders")
    cert = ["--ssl-certificate-location", str(pki.client_cert), "--ssl-key-location", str(pki.client_key)]
    code, out, err = verify(mtls.proxy.port, "--ssl-ca-location", str(pki.ca), *cert, capsys=capsys)
    assert code == 0, err
    assert json.loads(out)["complete"] is True

    failed_before = mtls.proxy.handshakes_failed
    code, _, err = verify(mtls.proxy.port, "--ssl-ca-location", str(pki.ca), capsys=capsys)  # no client certificate
    assert code == 2
    assert "Kafka error" in err
    assert mtls.proxy.handshakes_failed > failed_before  # refused at the TLS handshake
