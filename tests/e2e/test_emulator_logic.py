"""The emulator's delivery rules with an in-memory consumer, invoker and queue: no stack (no ``e2e`` marker).

These pin what the end-to-end tests can't reach cheaply: a record that alone passes the 6 MB payload limit, the
exact retry count before an on-failure record, and "no commit before success" step by step. The fakes stand in
for the broker, Lambda and SQS only; ``Emulator`` itself runs unchanged.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

from confluent_kafka import TopicPartition

from local.esm import events
from local.esm.emulator import Emulator, EmulatorConfig
from local.esm.invokers import InvokeOutcome


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        self._topic, self._partition, self._offset, self._value = topic, partition, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return []


class FakeConsumer:
    """Serves the given messages once, records commits, reports the log end as the high watermark."""

    def __init__(self, messages: list[FakeMessage]) -> None:
        self.pending = list(messages)
        self.commits: list[dict[str, int]] = []
        self.end = {(m.topic(), m.partition()): m.offset() + 1 for m in messages}

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any) -> None:
        on_assign(self, [TopicPartition(t, p) for t, p in sorted(self.end)])

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        batch, self.pending = self.pending[:num_messages], self.pending[num_messages:]
        return batch

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append({f"{tp.topic}-{tp.partition}": tp.offset for tp in offsets})

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        done: dict[str, int] = {}
        for commit in self.commits:
            done.update(commit)
        return [
            TopicPartition(tp.topic, tp.partition, done.get(f"{tp.topic}-{tp.partition}", -1001)) for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, **_: Any) -> tuple[int, int]:
        return 0, self.end[(tp.topic, tp.partition)]

    def close(self) -> None:
        """Nothing to close."""


class FakeInvoker:
    """Fails the first ``failures`` invocations, then succeeds; keeps every event it was sent."""

    function_arn = "arn:aws:lambda:us-east-1:000000000000:function:archiver"

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.events: list[dict[str, Any]] = []

    def invoke(self, payload: bytes) -> InvokeOutcome:
        self.events.append(json.loads(payload))
        if len(self.events) <= self.failures:
            return InvokeOutcome(ok=False, payload=b'{"errorMessage":"boom"}', function_error="Unhandled")
        return InvokeOutcome(ok=True, payload=b"{}")


class FakeQueue:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.bodies.append(json.loads(MessageBody))


def emulator(messages: list[FakeMessage], invoker: FakeInvoker, **settings: Any) -> tuple[Emulator, FakeConsumer]:
    consumer = FakeConsumer(messages)
    config = EmulatorConfig(
        bootstrap_servers="b:9092", topics=("t",), group_id="g", batching_window_s=0.0, until_idle_s=0.0,
        retry_backoff_s=0.0, on_failure_queue_url="http://queue", **settings,
    )  # fmt: skip
    queue = FakeQueue()
    run = Emulator(config, invoker, sqs_client=queue, out=io.StringIO(), consumer_factory=lambda _: consumer)  # type: ignore[arg-type, return-value]
    run.queue = queue  # type: ignore[attr-defined]
    return run, consumer


def test_commits_only_after_success_and_retries_the_same_batch() -> None:
    invoker = FakeInvoker(failures=2)
    run, consumer = emulator([FakeMessage("t", 0, o, b"v") for o in range(5)], invoker, batch_size=5)
    run.run()
    assert [len(e["records"]["t-0"]) for e in invoker.events] == [5, 5, 5]
    assert invoker.events[0] == invoker.events[1] == invoker.events[2]  # the same batch, retried
    assert consumer.commits == [{"t-0": 5}]  # one commit, after the third (successful) attempt


def test_retries_exhausted_send_one_on_failure_record_then_commit() -> None:
    invoker = FakeInvoker(failures=10)
    run, consumer = emulator([FakeMessage("t", 0, o, b"v") for o in range(3)], invoker, batch_size=3, max_retries=2)
    run.run()
    assert len(invoker.events) == 3  # the first attempt and 2 retries
    (record,) = run.queue.bodies  # type: ignore[attr-defined]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["KafkaBatchInfo"]["recordsInfo"]["t-0"]["lastRecordOffset"] == "2"
    assert consumer.commits == [{"t-0": 3}]


def test_a_record_over_the_payload_limit_is_discarded_as_maximum_payload_size_exceeded() -> None:
    huge = FakeMessage("t", 0, 1, b"x" * 5_000_000)  # ~6.7 MB once base64-encoded
    invoker = FakeInvoker()
    run, consumer = emulator([FakeMessage("t", 0, 0, b"a"), huge, FakeMessage("t", 0, 2, b"b")], invoker, batch_size=10)
    run.run()
    (record,) = run.queue.bodies  # type: ignore[attr-defined]
    assert record["requestContext"]["condition"] == "MaximumPayloadSizeExceeded"
    assert record["responseContext"] is None
    assert record["KafkaBatchInfo"]["recordsInfo"]["t-0"]["firstRecordOffset"] == "1"
    delivered = [r["offset"] for e in invoker.events for r in e["records"]["t-0"]]
    assert delivered == [0, 2]
    # Offsets move forward only: 0 is delivered and committed before the commit past the discarded record.
    assert consumer.commits == [{"t-0": 1}, {"t-0": 2}, {"t-0": 3}]


def test_batches_close_before_the_payload_limit_and_keep_partition_order() -> None:
    messages = [FakeMessage("t", o % 2, o // 2, b"y" * 1_500_000) for o in range(8)]  # ~2 MB each in the event
    invoker = FakeInvoker()
    run, _ = emulator(messages, invoker, batch_size=100)
    run.run()
    for event in invoker.events:
        assert len(events.encode_event(event)) <= events.MAX_PAYLOAD_BYTES
    offsets: dict[str, list[int]] = {}
    for event in invoker.events:
        for key, records in event["records"].items():
            offsets.setdefault(key, []).extend(r["offset"] for r in records)
    assert offsets == {"t-0": [0, 1, 2, 3], "t-1": [0, 1, 2, 3]}
    assert len(invoker.events) >= 3


def test_backoff_doubles_up_to_its_cap_even_after_thousands_of_attempts() -> None:
    run, _ = emulator([], FakeInvoker(), retry_backoff_max_s=10.0)
    run.config = dataclasses.replace(run.config, retry_backoff_s=0.5)
    assert [run._backoff(attempt) for attempt in (1, 2, 3, 5, 6)] == [0.5, 1.0, 2.0, 8.0, 10.0]
    assert run._backoff(5000) == 10.0  # with max_retries=-1 a batch can fail this often; no OverflowError
