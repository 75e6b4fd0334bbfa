"""The host executor enforces the function timeout as Lambda does: the invocation ends *at* the timeout with
``Sandbox.Timedout``, whatever the function is doing -- waiting on a hung S3 call or frozen outright (SIGSTOP) --
and whether its event fits in a pipe buffer (64 KiB) or not.

The function deployed in LocalStack is invoked directly (Lambda ``Invoke``, one attempt, as the emulator does). The
hung S3 call is ``local/faults.py`` holding the function's PUTs (its ``AWS_ENDPOINT_URL_S3`` points at the proxy);
the frozen runtime is the executor's own host process, stopped with SIGSTOP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from local.faults import FaultProxy, Rule, function_processes, s3_put
from tests.e2e.conftest import Deployed, function_configuration, invoke, kafka_event

pytestmark = pytest.mark.e2e

TIMEOUT_S = 3
# Invoke's own round trip through LocalStack, the kill and the error reply: what "at the timeout" may add.
MARGIN_S = 1.5
PIPE_BUFFER = 64 * 1024


EVENTS = {
    "small": {"records": 3, "value_bytes": 300},  # ~1.6 KB
    "large": {"records": 80, "value_bytes": 1000},  # ~110 KB: more than a pipe buffer
}


@pytest.fixture
def short_timeout(local_stack: Deployed, fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The function with a 3 s timeout and its S3 calls through the fault proxy, warmed up (one process running)."""
    with function_configuration(local_stack, timeout=TIMEOUT_S, AWS_ENDPOINT_URL_S3=fault_proxy.url):
        _, body, error = invoke(local_stack, kafka_event("e2e-timeout-warmup", records=1, value_bytes=10))
        assert error is None, body
        yield fault_proxy


@pytest.mark.parametrize("size", sorted(EVENTS))
def test_a_hung_s3_call_ends_at_the_timeout(local_stack: Deployed, short_timeout: FaultProxy, size: str) -> None:
    payload = kafka_event(f"e2e-hung-{size}", **EVENTS[size])
    assert (len(payload) > PIPE_BUFFER) == (size == "large")
    short_timeout.add(Rule(s3_put, delay_s=30, drop=True))  # S3 holds every PUT for 30 s

    elapsed, body, error = invoke(local_stack, payload)

    assert error == "Unhandled", body
    assert body["errorType"] == "Sandbox.Timedout", body
    assert f"Task timed out after {TIMEOUT_S:.2f} seconds" in body["errorMessage"]
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + MARGIN_S, f"{size} event: the invocation took {elapsed:.2f} s"


@pytest.mark.parametrize("size", sorted(EVENTS))
def test_a_frozen_runtime_ends_at_the_timeout(local_stack: Deployed, short_timeout: FaultProxy, size: str) -> None:
    if local_stack.localstack_pid is None:
        pytest.skip("LocalStack is external (AWS_ENDPOINT_URL): its function processes are not ours to stop")
    payload = kafka_event(f"e2e-frozen-{size}", **EVENTS[size])
    assert (len(payload) > PIPE_BUFFER) == (size == "large")
    frozen = function_processes(local_stack.function, local_stack.localstack_pid)
    assert frozen, "the warmed-up function has no host process"
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    # Should the executor not kill them, they are continued after 15 s so that the test fails instead of hanging.
    thaw = threading.Timer(15, _continue, args=(frozen,))
    thaw.start()
    try:
        elapsed, body, error = invoke(local_stack, payload)
    finally:
        thaw.cancel()
        _continue(frozen)

    assert error == "Unhandled", body
    assert body["errorType"] == "Sandbox.Timedout", body
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + MARGIN_S, f"{size} event: the invocation took {elapsed:.2f} s"
    # The frozen process was killed, and the next invocation gets a fresh one that works.
    assert not set(frozen) & set(function_processes(local_stack.function, local_stack.localstack_pid))
    _, body, error = invoke(local_stack, kafka_event(f"e2e-after-{size}", records=2, value_bytes=10))
    assert error is None, body
    assert body["recordsArchived"] == 2


def _continue(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # killed by the executor, as it should be
            os.kill(pid, signal.SIGCONT)
