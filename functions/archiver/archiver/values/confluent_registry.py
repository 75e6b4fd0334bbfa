"""A minimal Confluent Schema Registry client: ``GET /schemas/ids/{id}``, cached per container.

Schema ids are immutable in a Confluent registry, so a fetched schema is cached for the container's life and each
id costs one request per container. stdlib ``urllib`` instead of ``confluent-kafka[schemaregistry]``: one GET does
not justify ~20 MB of native wheels in the bundle.

Failure semantics (docs/typed-archives.md):
* 404 -> ``UnknownSchemaError``: the registry says the id does not exist; the record goes to the dead-letter queue.
* 401/403, 429, 5xx, timeouts, connection errors -> ``SchemaRegistryError`` (after a few quick retries for the
  transient ones): the batch is retried and no offset is committed.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from archiver.errors import SchemaRegistryError, UnknownSchemaError, ValueDecodeError
from archiver.values.base import AvroSchema

DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 3  # within one invocation; the event source retries the batch after that
BACKOFF_SECONDS = 0.2
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"


class ConfluentRegistryClient:
    """Fetches Avro writer schemas by id. ``secrets`` is a Secrets Manager client, used once, for basic auth."""

    def __init__(
        self,
        url: str,
        *,
        auth_secret_arn: str | None = None,
        secrets: Callable[[], Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url.rstrip("/")
        self._auth_secret_arn = auth_secret_arn
        self._secrets = secrets
        self._timeout = timeout
        self._sleep = sleep
        self._authorization: str | None = None
        self._cache: dict[int, AvroSchema] = {}

    def schema(self, schema_id: int) -> AvroSchema:
        """The Avro schema registered under ``schema_id``."""
        cached = self._cache.get(schema_id)
        if cached is None:
            cached = self._cache[schema_id] = self._fetch(schema_id)
        return cached

    def _fetch(self, schema_id: int) -> AvroSchema:
        body = self._get(f"/schemas/ids/{schema_id}", schema_id)
        try:
            document = json.loads(body)
            schema_type = document.get("schemaType", "AVRO")  # absent means Avro, by the registry's convention
            text = document["schema"]
        except (ValueError, KeyError, AttributeError, TypeError) as error:
            raise SchemaRegistryError(
                f"schema registry {self._url} sent an unexpected answer for id {schema_id}"
            ) from error
        if schema_type != "AVRO":
            raise ValueDecodeError(f"schema id {schema_id} is a {schema_type} schema, not Avro")
        if document.get("references"):
            raise ValueDecodeError(f"schema id {schema_id} uses schema references, which the archiver does not resolve")
        try:
            schema: AvroSchema = json.loads(text)
        except (ValueError, TypeError) as error:
            raise ValueDecodeError(f"schema id {schema_id} is not valid Avro schema JSON") from error
        return schema

    def _get(self, path: str, schema_id: int) -> bytes:
        headers = {"Accept": ACCEPT}
        authorization = self._auth()
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(f"{self._url}{path}", headers=headers)  # noqa: S310 (http(s) checked in config)
        problem = ""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                    body: bytes = response.read()
                    return body
            except urllib.error.HTTPError as error:
                error.close()  # the error is also the open response; leaving it open leaks the socket
                if error.code == 404:
                    raise UnknownSchemaError(
                        f"schema id {schema_id} is not in the schema registry {self._url} (HTTP 404)"
                    ) from error
                problem = f"HTTP {error.code}"
                if error.code not in _TRANSIENT:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                problem = f"{type(error).__name__}: {error}"
        raise SchemaRegistryError(f"schema registry {self._url} could not answer for schema id {schema_id}: {problem}")

    def _auth(self) -> str | None:
        if self._auth_secret_arn is None or self._secrets is None:
            return None
        if self._authorization is None:
            self._authorization = "Basic " + base64.b64encode(self._credentials().encode()).decode("ascii")
        return self._authorization

    def _credentials(self) -> str:
        """``user:password`` from a secret holding ``{"username", "password"}`` (the ESM's own BASIC_AUTH shape)
        or the text ``user:password``."""
        assert self._secrets is not None
        assert self._auth_secret_arn is not None
        try:
            text = self._secrets().get_secret_value(SecretId=self._auth_secret_arn)["SecretString"]
        except (ClientError, BotoCoreError, KeyError) as error:
            raise SchemaRegistryError(
                f"could not read the registry credentials {self._auth_secret_arn}: {error}"
            ) from error
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("username"), str):
            return f"{document['username']}:{document.get('password', '')}"
        if ":" in text:
            return str(text)
        raise SchemaRegistryError(
            f'secret {self._auth_secret_arn} must hold {{"username": ..., "password": ...}} or \'user:password\''
        )
