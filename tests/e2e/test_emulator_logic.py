"""The emulator's delivery rules with an in-memory consumer, invoker and queue: no stack (no ``e2e`` marker).

These pin what the end-to-end tests can't reach cheaply: a record that alone passes the 6 MB payload limit, the
exact retry count before an on-failure record, "no commit before success" step by step, commits the broker refuses,
and re-batched retries. The fakes stand in for the broker, Lambda and SQS only; ``Emulator`` itself runs unchanged.
The Invoke client is checked against ``local/faults.py`` answering as Lambda would (no LocalStack needed).
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from local import config
from local.esm import events
from local.esm.emulator import Emulator, EmulatorConfig
from local.esm.invokers import InvokeOutcome, LambdaInvoker, invoke_client
from local.faults import LAMBDA_THROTTLED, FaultProxy, Request, Rule, lambda_invoke


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
    """Serves the given messages once, records commits, reports the log end as the high watermark.

    ``refuse_commits`` makes that many commits fail as a broker refuses them; ``rebalance_after`` revokes every
    partition at that consume call and assigns it again from the committed offsets, as a group rebalance does.
    """

    def __init__(self, messages: list[FakeMessage], refuse_commits: int = 0, rebalance_after: int = -1) -> None:
        self.messages = list(messages)
        self.pending = list(messages)
        self.commits: list[dict[str, int]] = []
        self.refused: list[dict[str, int]] = []
        self.refuse_commits = refuse_commits
        self.rebalance_after = rebalance_after
        self.consumed = 0
        self.end = {(m.topic(), m.partition()): m.offset() + 1 for m in messages}

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any) -> None:
        self.on_assign, self.on_revoke = on_assign, on_revoke
        on_assign(self, self.partitions())

    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.end)]

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.consumed += 1
        if self.consumed == self.rebalance_after:
            self.on_revoke(self, self.partitions())
            done = {key: offset for commit in self.commits for key, offset in commit.items()}
            self.pending = [m for m in self.messages if m.offset() >= done.get(f"{m.topic()}-{m.partition()}", 0)]
            self.on_assign(self, self.partitions())
        batch, self.pending = self.pending[:num_messages], self.pending[num_messages:]
        return batch

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        named = {f"{tp.topic}-{tp.partition}": tp.offset for tp in offsets}
        if len(self.refused) < self.refuse_commits:
            self.refused.append(named)
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID, "Commit failed: Broker: Unknown member"))
        self.commits.append(named)

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
    """Fails the first ``failures`` invocations (or those ``fail`` says), else succeeds; keeps every event."""

    function_arn = "arn:aws:lambda:us-east-1:000000000000:function:archiver"

    def __init__(self, failures: int = 0, fail: Any = None) -> None:
        self.failures = failures
        self.fail = fail
        self.events: list[dict[str, Any]] = []
        self.outcomes: list[bool] = []

    def invoke(self, payload: bytes) -> InvokeOutcome:
        self.events.append(json.loads(payload))
        failed = self.fail() if self.fail is not None else len(self.events) <= self.failures
        self.outcomes.append(not failed)
        if failed:
            return InvokeOutcome(ok=False, payload=b'{"errorMessage":"boom"}', function_error="Unhandled")
        return InvokeOutcome(ok=True, payload=b"{}")


class FakeQueue:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.bodies.append(json.loads(MessageBody))


def emulator(
    messages: list[FakeMessage], invoker: FakeInvoker, consumer: FakeConsumer | None = None, **settings: Any
) -> tuple[Emulator, FakeConsumer]:
    consumer = consumer or FakeConsumer(messages)
    settings = {"retry_backoff_s": 0.0, **settings}
    emulator_config = EmulatorConfig(
        bootstrap_servers="b:9092", topics=("t",), group_id="g", batching_window_s=0.0, until_idle_s=0.0,
        on_failure_queue_url="http://queue", **settings,
    )  # fmt: skip
    queue = FakeQueue()
    run = Emulator(emulator_config, invoker, sqs_client=queue, out=io.StringIO(), consumer_factory=lambda _: consumer)  # type: ignore[arg-type, return-value]
    run.queue = queue  # type: ignore[attr-defined]
    return run, consumer


def emitted(run: Emulator) -> list[dict[str, Any]]:
    output = run.out.getvalue()  # type: ignore[attr-defined]
    return [json.loads(line) for line in output.splitlines()]


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


def test_a_refused_commit_is_reported_counted_and_never_printed_as_committed() -> None:
    invoker = FakeInvoker()
    messages = [FakeMessage("t", 0, o, b"v") for o in range(10)]
    # A backoff before retrying a refused commit, so that batch 2 comes first.
    run, consumer = emulator(
        messages, invoker, FakeConsumer(messages, refuse_commits=2), batch_size=5, retry_backoff_s=0.2
    )
    stats = run.run()

    commits = [(e["event"], e["offsets"]) for e in emitted(run) if e["event"] in ("committed", "commit-failed")]
    # Batch 1's commit is refused; batch 2's (which carries batch 1's offsets too) is refused; the retry succeeds.
    assert commits == [("commit-failed", {"t-0": 5}), ("commit-failed", {"t-0": 10}), ("committed", {"t-0": 10})]
    assert consumer.commits == [{"t-0": 10}]
    assert stats.failed_commits == 2
    assert emitted(run)[-1]["event"] == "stopped"
    assert emitted(run)[-1]["committed"] == {"t-0": 10}
    assert emitted(run)[-1]["failed_commits"] == 2


def test_a_refused_commit_then_a_rebalance_redelivers_the_batch() -> None:
    """At-least-once: the commit of records 0-4 is refused, the partition is revoked and assigned again, and its
    records come again from the last committed offset (none): 0-4 are delivered twice, nothing is skipped."""
    invoker = FakeInvoker()
    messages = [FakeMessage("t", 0, o, b"v") for o in range(10)]
    consumer = FakeConsumer(messages, refuse_commits=3, rebalance_after=2)
    run, _ = emulator(messages, invoker, consumer, batch_size=5)
    stats = run.run()

    delivered = [[r["offset"] for r in e["records"]["t-0"]] for e in invoker.events]
    assert delivered == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    kinds = [e["event"] for e in emitted(run)]
    assert kinds.index("revoked") < kinds.index("commit-abandoned") < kinds.index("committed")
    assert consumer.commits[-1] == {"t-0": 10}
    assert stats.abandoned_commits == 1


@pytest.mark.parametrize("seed", range(8))
def test_vary_retries_start_at_the_same_offsets_with_other_sizes(seed: int) -> None:
    """--retry-batching vary: every retry starts where the failed batch did, in each partition's order, with a
    different size; nothing is skipped or reordered, and each record is committed once, in order."""
    rng = random.Random(seed)
    messages = [FakeMessage("t", o % 3, o // 3, b"v") for o in range(90)]  # three partitions, interleaved
    invoker = FakeInvoker(fail=lambda: rng.random() < 0.4)
    run, consumer = emulator(messages, invoker, batch_size=12, retry_batching="vary", retry_seed=seed)
    stats = run.run()

    next_offset = {f"t-{p}": 0 for p in range(3)}  # what the emulator committed so far
    previous: dict[str, Any] | None = None
    for event, ok in zip(invoker.events, invoker.outcomes, strict=True):
        batch = {key: [r["offset"] for r in records] for key, records in event["records"].items()}
        for key, offsets in batch.items():
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), f"{key} skips or reorders"
            assert offsets[0] == next_offset[key], f"{key} does not start at its committed offset"
        if previous is not None:  # a retry: same first offsets, another size
            first = next(iter(previous))
            assert batch.get(first, [None])[0] == previous[first][0]
            assert sum(map(len, batch.values())) != sum(map(len, previous.values())) or len(consumer.pending) == 0
        if ok:
            for key, offsets in batch.items():
                next_offset[key] = offsets[-1] + 1
            previous = None
        else:
            previous = batch
    assert next_offset == {f"t-{p}": 30 for p in range(3)}
    assert consumer.commits[-1] == next_offset
    assert stats.rebatched_retries == invoker.outcomes.count(False) > 0


def test_the_invoke_client_makes_one_attempt_per_call() -> None:
    """A throttled or dropped Invoke is one request: botocore must not retry behind the emulator's back."""
    proxy = FaultProxy("http://127.0.0.1:9")  # nothing is forwarded: every request matches a rule
    proxy.add(
        Rule(
            lambda r: r.method == "GET" and r.path.endswith("/configuration"),
            (200, "application/json", b'{"FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f"}'),
        )
    )
    throttled = proxy.add(Rule(lambda_invoke, LAMBDA_THROTTLED, times=1))
    dropped = proxy.add(Rule(lambda_invoke, drop=True, times=1))
    proxy.start()
    try:
        invoker = LambdaInvoker("f", invoke_client(config.Endpoints(kafka_bootstrap="", aws_endpoint=proxy.url)))
        first = invoker.invoke(b"{}")
        second = invoker.invoke(b"{}")
    finally:
        proxy.stop()
    assert not first.ok
    assert "TooManyRequestsException" in (first.error or "")
    assert not second.ok
    assert second.error
    assert (throttled.served, dropped.served) == (1, 1)


def test_lambda_invoke_matches_only_invocations() -> None:
    assert lambda_invoke(Request("POST", "/2015-03-31/functions/f/invocations", {}))
    assert not lambda_invoke(Request("GET", "/2015-03-31/functions/f/configuration", {}))
