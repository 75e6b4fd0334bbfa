"""Fixtures for typed archives: moto (S3, SQS, Glue, Secrets Manager) and a local Confluent-compatible registry.

The registry is a real HTTP server on 127.0.0.1 (a free port, one thread) speaking the part of the Confluent
Schema Registry REST API the archiver uses, ``GET /schemas/ids/{id}`` -> ``{"schema": "<schema JSON text>"}``, so
the client's urllib code, status handling and basic auth run for real. It counts requests, which is how the
tests prove per-container caching.

Glue goes through moto: LocalStack's community edition (the ``localstack-core`` 2026.3.0 the local stack
installs under .local/localstack-venv) has no Glue provider at all -- Glue is in LocalStack's paid edition -- and
this machine has no Docker engine. moto implements CreateRegistry, CreateSchema, RegisterSchemaVersion and
GetSchemaVersion, which is everything the archiver calls.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import fastavro
import pytest
from moto import mock_aws

from archiver.pipeline import Archiver
from archiver.settings import Settings
from tests.unit.aws_fakes import BUCKET, TEST_SDK_CONFIG, FakeAws, create_fake_aws

REGION = "us-east-1"


@dataclass
class TypedAws(FakeAws):
    glue: Any = None
    secrets: Any = None
    glue_calls: list[str] = field(default_factory=list)

    def clients(self, service: str, **_: Any) -> Any:
        """The ``value_clients`` factory the handler passes, answering with these moto clients."""
        return {"glue": self.glue, "secretsmanager": self.secrets}[service]

    def read(self, key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(the file's own schema, its records) of one archive object."""
        reader = fastavro.reader(io.BytesIO(self.body(key)))
        records = list(reader)
        schema: dict[str, Any] = reader.writer_schema  # type: ignore[assignment]
        return schema, records  # type: ignore[return-value]


@pytest.fixture
def aws(fake_aws_env: None) -> Iterator[TypedAws]:
    with mock_aws():
        base = create_fake_aws()
        typed = TypedAws(
            s3=base.s3,
            sqs=base.sqs,
            queue_url=base.queue_url,
            glue=boto3.client("glue", region_name=REGION, config=TEST_SDK_CONFIG),
            secrets=boto3.client("secretsmanager", region_name=REGION, config=TEST_SDK_CONFIG),
        )
        typed.glue.meta.events.register(
            "provide-client-params.glue.GetSchemaVersion",
            lambda params, **_: typed.glue_calls.append(params["SchemaVersionId"]),
        )
        yield typed


# ------------------------------------------------------------------------------------------- the local registry


@dataclass
class Registry:
    """A Confluent-compatible registry: ``schemas`` by id, request log, optional auth and injected failures."""

    url: str = ""
    schemas: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    credentials: tuple[str, str] | None = None
    failures: list[int] = field(default_factory=list)  # statuses to answer with, in order, before the real answer

    def register(self, schema_id: int, schema: Any, **extra: Any) -> None:
        self.schemas[schema_id] = {"schema": json.dumps(schema), **extra}

    def lookups(self, schema_id: int) -> int:
        return self.requests.count(f"/schemas/ids/{schema_id}")


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            registry.requests.append(self.path)
            if registry.credentials is not None:
                token = base64.b64encode(":".join(registry.credentials).encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    return self._send(401, {"error_code": 401, "message": "Unauthorized"})
            if registry.failures:
                return self._send(registry.failures.pop(0), {"error_code": 50001, "message": "Internal error"})
            prefix = "/schemas/ids/"
            if not self.path.startswith(prefix) or not self.path[len(prefix) :].isdigit():
                return self._send(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
            found = registry.schemas.get(int(self.path[len(prefix) :]))
            if found is None:
                return self._send(404, {"error_code": 40403, "message": "Schema not found"})
            return self._send(200, found)

        def _send(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

    return Handler


@contextmanager
def running_registry() -> Iterator[Registry]:
    """A registry served on 127.0.0.1 for the duration of the ``with`` block (the fuzz suite uses one too)."""
    state = Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))  # port 0: the OS picks a free port
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def registry() -> Iterator[Registry]:
    with running_registry() as state:
        yield state


# ----------------------------------------------------------------------------------------- building values


def avro_body(schema: Any, datum: Any) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, fastavro.parse_schema(schema), datum)
    return stream.getvalue()


def confluent_value(schema_id: int, schema: Any, datum: Any) -> bytes:
    """What Confluent's KafkaAvroSerializer writes: magic byte 0, big-endian int32 id, Avro body."""
    return b"\x00" + schema_id.to_bytes(4, "big") + avro_body(schema, datum)


def glue_value(version_id: str, schema: Any, datum: Any, *, compress: bool = False) -> bytes:
    """What the aws-glue-schema-registry serializer writes: 3, compression (0 / 5 zlib), UUID, body."""
    body = avro_body(schema, datum)
    return bytes([3, 5 if compress else 0]) + uuid.UUID(version_id).bytes + (zlib.compress(body) if compress else body)


@pytest.fixture
def schemas_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "value_schemas"
    folder.mkdir()
    return folder


def write_schema(folder: Path, name: str, schema: Any) -> str:
    (folder / name).write_text(json.dumps(schema))
    return name


def make_archiver(aws: TypedAws, formats: dict[str, Any], schemas_dir: Path, **settings: Any) -> Archiver:
    config = Settings(
        archive_bucket=BUCKET,
        dead_letter_queue_url=aws.queue_url,
        value_formats=json.dumps(formats),
        value_schemas_dir=str(schemas_dir),
        **settings,
    )
    return Archiver(config, s3_client=aws.s3, sqs_client=aws.sqs, value_clients=aws.clients)
