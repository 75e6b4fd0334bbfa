"""AWS Glue Schema Registry: Avro writer schemas by schema version id, via ``glue:GetSchemaVersion``, cached.

A schema version id is immutable, so each is fetched once per container. The Glue client comes from the caller
(retries and endpoint as configured there), so tests hand in a moto-backed one.

* ``EntityNotFoundException`` -> ``UnknownSchemaError``: the record goes to the dead-letter queue.
* Anything else (access denied, throttling, service errors, network) -> ``SchemaRegistryError``: batch retried.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from archiver.errors import SchemaRegistryError, UnknownSchemaError, ValueDecodeError
from archiver.values.base import AvroSchema

NOT_FOUND = "EntityNotFoundException"


class GlueRegistryClient:
    """Fetches Avro schema definitions by Glue schema version id (a UUID string)."""

    def __init__(self, glue_client: Any) -> None:
        self._glue = glue_client
        self._cache: dict[str, AvroSchema] = {}

    def schema(self, version_id: str) -> AvroSchema:
        cached = self._cache.get(version_id)
        if cached is None:
            cached = self._cache[version_id] = self._fetch(version_id)
        return cached

    def _fetch(self, version_id: str) -> AvroSchema:
        try:
            response = self._glue.get_schema_version(SchemaVersionId=version_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == NOT_FOUND:
                raise UnknownSchemaError(f"schema version {version_id} is not in the Glue Schema Registry") from error
            raise SchemaRegistryError(f"Glue Schema Registry could not answer for {version_id}: {error}") from error
        except BotoCoreError as error:
            raise SchemaRegistryError(f"Glue Schema Registry could not answer for {version_id}: {error}") from error
        data_format = response.get("DataFormat")
        if data_format != "AVRO":
            raise ValueDecodeError(f"schema version {version_id} is a {data_format} schema, not Avro")
        try:
            schema: AvroSchema = json.loads(response["SchemaDefinition"])
        except (KeyError, ValueError, TypeError) as error:
            raise ValueDecodeError(f"schema version {version_id} is not valid Avro schema JSON") from error
        return schema
