"""Topic format -> ``ValueDecoder``. A format's modules (and its registry client) are imported only when a topic
uses it, as Powertools' Kafka deserializer factory does; registry clients are shared by the topics that use the
same registry, so each schema is fetched once per container."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archiver.values.base import ValueDecoder
from archiver.values.config import TopicFormat

# (service name, **client kwargs) -> a boto3 client; the handler passes one built on its SDK config.
ClientFactory = Callable[..., Any]


def default_clients(service: str, **kwargs: Any) -> Any:
    import boto3

    return boto3.client(service, **kwargs)


class DecoderFactory:
    """Builds decoders; remembers registry clients so topics on one registry share its cache."""

    def __init__(self, clients: ClientFactory | None = None) -> None:
        self._clients = clients or default_clients
        self._registries: dict[tuple[str, ...], Any] = {}
        self._secrets: Any = None

    def decoder(self, topic_format: TopicFormat) -> ValueDecoder:
        if topic_format.format == "json":
            from archiver.values.json_schema import JsonSchemaDecoder

            assert topic_format.schema is not None  # required by config validation
            return JsonSchemaDecoder(topic_format.schema)
        if topic_format.format == "avro-confluent":
            from archiver.values.confluent import ConfluentAvroDecoder

            return ConfluentAvroDecoder(
                self._confluent(topic_format),
                reader_schema=topic_format.reader_schema,
                esm_record_format=topic_format.esm_record_format,
            )
        if topic_format.format == "avro-glue":
            from archiver.values.glue import GlueAvroDecoder

            return GlueAvroDecoder(
                self._glue(topic_format),
                reader_schema=topic_format.reader_schema,
                esm_record_format=topic_format.esm_record_format,
            )
        raise ValueError(f"format {topic_format.format!r} has no decoder; raw topics are archived as bytes")

    def _confluent(self, topic_format: TopicFormat) -> Any:
        from archiver.values.confluent_registry import ConfluentRegistryClient

        assert topic_format.registry_url is not None
        key = ("confluent", topic_format.registry_url, topic_format.registry_auth_secret_arn or "")
        if key not in self._registries:
            self._registries[key] = ConfluentRegistryClient(
                topic_format.registry_url,
                auth_secret_arn=topic_format.registry_auth_secret_arn,
                secrets=self._secrets_client,
            )
        return self._registries[key]

    def _glue(self, topic_format: TopicFormat) -> Any:
        from archiver.values.glue_registry import GlueRegistryClient

        region = topic_format.registry_region or ""
        key = ("glue", region)
        if key not in self._registries:
            kwargs = {"region_name": region} if region else {}
            self._registries[key] = GlueRegistryClient(self._clients("glue", **kwargs))
        return self._registries[key]

    def _secrets_client(self) -> Any:
        # Created on first use: a registry without auth never needs Secrets Manager (nor its endpoint).
        if self._secrets is None:
            self._secrets = self._clients("secretsmanager")
        return self._secrets
