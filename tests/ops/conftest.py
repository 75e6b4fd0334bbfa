"""Fixtures for the archive-operations tests: the local broker for replay (moto S3/SQS is tests/conftest.aws)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import stack


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker for the whole session: local.stack's Tansu (instance "ops"), or $KAFKA_BOOTSTRAP_SERVERS.

    Started and stopped (by PID) through local.stack's own helpers, so the ops tests never touch another
    instance's broker.
    """
    service = stack.start_kafka("ops", None)
    try:
        yield service.url
    finally:
        stack.stop_service(service)
