"""The function keeps retrying after an outage in a warm container.

botocore's standard retry mode keeps a retry quota per client, which an outage drains; a warm container that kept
its clients would then fail the next throttled request without retrying it. The handler builds its clients again
after a batch fails on infrastructure (``RebuiltAfterFailure``), so the batches after an outage get their SDK retries.

One container (the same host process throughout, checked) takes every batch: the deployed function, invoked directly,
with its S3 calls through ``local/faults.py``.
"""

from __future__ import annotations

import pytest

from local.faults import S3_SLOW_DOWN, FaultProxy, Rule, function_processes, s3_put, s3_request
from tests.e2e.conftest import Deployed, function_configuration, invoke, kafka_event

pytestmark = pytest.mark.e2e

PARTITIONS = 8  # objects per batch: enough failing PUTs, each retried 8 times, to drain a client's quota


def test_retries_survive_an_outage_in_a_warm_container(local_stack: Deployed, fault_proxy: FaultProxy) -> None:
    topic = "e2e-warm-retries"
    with function_configuration(local_stack, AWS_ENDPOINT_URL_S3=fault_proxy.url):
        _, body, error = invoke(local_stack, kafka_event(topic, records=2, value_bytes=10, first_offset=0))
        assert error is None, body
        container = (
            function_processes(local_stack.function, local_stack.localstack_pid) if local_stack.localstack_pid else []
        )

        outage = fault_proxy.add(Rule(s3_request, drop=True))  # S3 unreachable: every connection dropped
        _, body, error = invoke(local_stack, kafka_event(topic, records=5, value_bytes=100, partitions=PARTITIONS))
        assert error == "Unhandled", body
        assert body["errorType"] == "ArchiveWriteError", body
        assert outage.served > PARTITIONS  # the SDK retried them, until its retry quota ran out
        fault_proxy.remove(outage)

        # S3 is back, and throttles: every object's first PUT is answered 503 SlowDown.
        throttle = fault_proxy.add(Rule(s3_put, S3_SLOW_DOWN, once_per_path=True))
        for batch in range(3):
            payload = kafka_event(
                topic, records=5, value_bytes=100, partitions=PARTITIONS, first_offset=10 * batch + 10
            )
            _, body, error = invoke(local_stack, payload)
            assert error is None, f"batch {batch} after the outage: {body}"
            assert body["objectsWritten"] == PARTITIONS
        assert throttle.served == 3 * PARTITIONS  # every one of them was throttled once, and retried

        if local_stack.localstack_pid:
            assert function_processes(local_stack.function, local_stack.localstack_pid) == container
