"""The Kafka event-source-mapping emulator: consume with a consumer group, batch, invoke, commit after success.

What it does, as AWS's Kafka poller does:

* Batches close at ``batch_size`` records, after ``batching_window`` seconds from the first record, or before the
  event would pass the 6 MB invocation payload limit. Invocations run one at a time, so each partition's records
  reach the function in offset order.
* Offsets are committed (``last + 1`` per partition) only after the invocation succeeded. A commit the broker
  refuses is reported (``commit-failed``) and counted, never as committed: its offsets stay pending and go with the
  next commit (commits are cumulative per partition). If the partition is revoked first, the pending offsets are
  abandoned and the partition's next owner gets those records again from the last committed offset -- at-least-once
  delivery, as AWS documents for its event-source mappings ("process each event at least once").
* A failed invocation (function error, timeout, throttling, or LocalStack unreachable) is retried from the same
  offsets, with backoff, up to ``max_retries`` (-1 = forever, AWS's default for Kafka). With ``retry_batching=
  "same"`` the retry is the same batch; with ``"vary"`` it is collected again from the same offsets with another
  size limit (seeded), as AWS may retry with a larger or smaller batch. When retries are exhausted, an on-failure
  record shaped like AWS's goes to ``on_failure_queue_url`` and the batch is committed. A record that alone passes
  the payload limit goes there at once (``MaximumPayloadSizeExceeded``). If that send fails, nothing is committed.
* SIGINT/SIGTERM finish the current step, commit what succeeded, leave the group and exit 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from local.esm import events
from local.esm.invokers import InvokeOutcome, Invoker
from local.esm.metrics import parse_emf, put_metrics, totals

RETRY_BATCHING = ("same", "vary")


@dataclass(frozen=True)
class EmulatorConfig:
    bootstrap_servers: str
    topics: tuple[str, ...]
    group_id: str
    batch_size: int = 100  # AWS's default for Kafka
    batching_window_s: float = 0.5  # AWS's default for Kafka (500 ms)
    max_payload_bytes: int = events.MAX_PAYLOAD_BYTES
    max_retries: int = -1  # AWS's default for Kafka: retry until the record expires (forever here)
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    on_failure_queue_url: str | None = None
    source: events.EventSource = field(default_factory=events.EventSource)
    starting_position: str = "earliest"  # TRIM_HORIZON; "latest" = LATEST
    until_idle_s: float | None = None  # exit once everything is processed and nothing came for this long
    progress_interval_s: float = 5.0
    # Test hook: sleep between a successful invocation and its commit, to widen the "killed mid-batch" window.
    pause_before_commit_s: float = 0.0
    # Test hook: the emulator stops itself (SIGSTOP) between its first successful invocation and that commit, so a
    # test can hold it there past the session timeout without racing it (the test sends SIGCONT).
    freeze_before_first_commit: bool = False
    retry_batching: str = "same"  # "vary": each retry re-collects from the same offsets with another size limit
    retry_seed: int | None = None  # seeds "vary"'s sizes, so a run can be repeated
    # The broker drops a member that sent no heartbeat for this long; Apache Kafka's minimum is 6 s by default.
    session_timeout_ms: int = 6000

    def __post_init__(self) -> None:
        problems = []
        if not self.topics:
            problems.append("at least one topic is required")
        if not 1 <= self.batch_size <= 10_000:
            problems.append(f"batch_size must be 1-10000 (AWS's range), got {self.batch_size}")
        if not 0 <= self.batching_window_s <= 300:
            problems.append(f"batching_window_s must be 0-300 s (AWS's range), got {self.batching_window_s}")
        if self.max_retries < -1:
            problems.append(f"max_retries must be -1 (forever) or >= 0, got {self.max_retries}")
        if self.max_retries >= 0 and not self.on_failure_queue_url:
            problems.append("max_retries >= 0 needs on_failure_queue_url (where discarded batches are recorded)")
        if self.retry_batching not in RETRY_BATCHING:
            problems.append(f"retry_batching must be one of {', '.join(RETRY_BATCHING)}, got {self.retry_batching!r}")
        if self.session_timeout_ms < 1000:
            problems.append(f"session_timeout_ms must be >= 1000, got {self.session_timeout_ms}")
        if problems:
            raise ValueError("invalid emulator settings: " + "; ".join(problems))


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    records: int = 0
    batches: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    rebatched_retries: int = 0
    failed_commits: int = 0
    abandoned_commits: int = 0
    discarded_batches: int = 0
    metric_totals: dict[str, float] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)

    def add_metrics(self, sums: dict[str, float]) -> None:
        for name, value in sums.items():
            self.metric_totals[name] = self.metric_totals.get(name, 0.0) + value

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "records": self.records,
            "records_per_s": round(self.records / elapsed, 1),
            "batches": self.batches,
            "invocations": self.invocations,
            "failed_invocations": self.failed_invocations,
            "rebatched_retries": self.rebatched_retries,
            "failed_commits": self.failed_commits,
            "abandoned_commits": self.abandoned_commits,
            "discarded_batches": self.discarded_batches,
            "objects_written": int(self.metric_totals.get("ObjectsWritten", 0)),
            "records_archived": int(self.metric_totals.get("RecordsArchived", 0)),
            "records_dead_lettered": int(self.metric_totals.get("RecordsDeadLettered", 0)),
            "lag": dict(sorted(self.lag.items())),
            "committed": dict(sorted(self.committed.items())),
        }


class Emulator:
    """One event-source mapping: a consumer group feeding one function through an ``Invoker``."""

    def __init__(
        self,
        emulator_config: EmulatorConfig,
        invoker: Invoker,
        *,
        sqs_client: Any | None = None,
        cloudwatch_client: Any | None = None,
        out: TextIO = sys.stdout,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
    ) -> None:
        self.config = emulator_config
        self.invoker = invoker
        self.sqs = sqs_client
        self.cloudwatch = cloudwatch_client
        self.out = out
        self.stats = Stats()
        self._stop = threading.Event()
        self._carry: list[events.KafkaRecord] = []
        # Offsets (next to read) of successful batches whose commit the broker has not accepted yet.
        self._pending_commits: dict[tuple[str, int], int] = {}
        self._next_commit_try = 0.0
        self._revoked_while_collecting: set[tuple[str, int]] = set()
        self._rng = random.Random(emulator_config.retry_seed)  # noqa: S311 - batch sizes, not security
        self._assigned: list[TopicPartition] = []
        self._last_progress = time.monotonic()
        self._last_record_at = time.monotonic()
        self._frozen_once = False
        self._consumer = consumer_factory(self._consumer_settings())

    # -- setup --------------------------------------------------------------------------------------------------------

    def _consumer_settings(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.config.bootstrap_servers,
            "group.id": self.config.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": self.config.starting_position,
            # The group join takes ~23 s with librdkafka's defaults against Tansu, ~3 s with these (LOCAL-INFRA.md).
            "session.timeout.ms": self.config.session_timeout_ms,
            "heartbeat.interval.ms": 500,
            # Retries can hold a batch for long; the consumer must stay in its group meanwhile.
            "max.poll.interval.ms": 86_400_000,
            "isolation.level": "read_committed",
            "log_level": 3,
        }

    def request_stop(self, *_: Any) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now
        self._emit("stopping", reason="signal")
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    # -- main loop ----------------------------------------------------------------------------------------------------

    def run(self) -> Stats:
        self._consumer.subscribe(list(self.config.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._emit("started", topics=list(self.config.topics), group=self.config.group_id)
        try:
            while not self._stop.is_set():
                if self._pending_commits and time.monotonic() >= self._next_commit_try:
                    self._flush_commits()
                batch = self._collect()
                if batch:
                    if not self._deliver(batch):
                        break  # stopping while a batch was failing: leave it uncommitted for the next run
                    self._last_record_at = time.monotonic()
                elif self._idle_done():
                    self._emit("idle", seconds=self.config.until_idle_s)
                    break
                self._maybe_progress()
        finally:
            if self._pending_commits:
                self._flush_commits()
            self._refresh_lag()
            self._emit("stopped", **self.stats.as_dict())
            self._consumer.close()
        return self.stats

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)
        self._emit("assigned", partitions=[f"{p.topic}-{p.partition}" for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        self._revoked_while_collecting |= revoked
        self._emit("revoked", partitions=[f"{topic}-{partition}" for topic, partition in sorted(revoked)])
        if any(key in revoked for key in self._pending_commits):
            self._flush_commits()  # last chance; still allowed while the partitions are being revoked
            abandoned = {key: offset for key, offset in self._pending_commits.items() if key in revoked}
            if abandoned:
                # The partition's next owner starts at the last committed offset: these records come again.
                self.stats.abandoned_commits += 1
                self._emit("commit-abandoned", offsets={f"{t}-{p}": o for (t, p), o in sorted(abandoned.items())})
                for key in abandoned:
                    del self._pending_commits[key]
        # Records not yet delivered will be fetched again from the committed offset by whoever gets the partition.
        self._carry = [r for r in self._carry if (r.topic, r.partition) not in revoked]
        self._assigned = [p for p in self._assigned if (p.topic, p.partition) not in revoked]

    def _idle_done(self) -> bool:
        if self.config.until_idle_s is None or not self._assigned or self._pending_commits:
            return False
        if time.monotonic() - self._last_record_at < self.config.until_idle_s:
            return False
        self._refresh_lag()
        return all(lag == 0 for lag in self.stats.lag.values())

    # -- batching -----------------------------------------------------------------------------------------------------

    def _collect(self, limit: int | None = None) -> list[events.KafkaRecord]:
        """Gather one batch: up to ``limit`` (batch_size) records, batching_window after the first, under the payload
        limit. Records come from the front of ``_carry`` first, so a batch put back there is collected again.

        A partition revoked while the batch was gathered (a rebalance runs inside ``consume``) leaves it: its next
        owner reads it from the committed offset."""
        max_records = limit or self.config.batch_size
        batch = events.Batch()
        deadline: float | None = None
        while not self._stop.is_set():
            while self._carry:
                record = self._carry[0]
                size = events.record_size(record, self.config.source)
                if size + events.EVENT_OVERHEAD_BYTES > self.config.max_payload_bytes:
                    if batch.records:
                        # Deliver (and commit) what precedes it first: committing past the oversized record must
                        # never commit past an undelivered one.
                        return batch.records
                    self._carry.pop(0)
                    if not self._discard_oversized(record, size):
                        self._carry.insert(0, record)
                        return []
                    continue
                if not batch.fits(size, max_records, self.config.max_payload_bytes):
                    return batch.records
                batch.add(self._carry.pop(0), size)
                if deadline is None:
                    deadline = time.monotonic() + self.config.batching_window_s
            if len(batch) >= max_records:
                return batch.records
            remaining = 0.2 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return batch.records
            wanted = max(1, max_records - len(batch))
            self._revoked_while_collecting.clear()
            messages = self._consumer.consume(num_messages=min(wanted, 10_000), timeout=min(remaining, 0.2))
            if self._revoked_while_collecting:
                batch = self._without_revoked(batch)
            self._carry.extend(self._to_record(m) for m in messages if self._usable(m))
            if not messages and deadline is None:
                return []
        return []  # stopping: records gathered so far are not committed and will be fetched again

    def _without_revoked(self, batch: events.Batch) -> events.Batch:
        kept = events.Batch()
        for record in batch.records:
            if (record.topic, record.partition) not in self._revoked_while_collecting:
                kept.add(record, events.record_size(record, self.config.source))
        return kept

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() != KafkaError._PARTITION_EOF:
            self._emit("consumer-error", error=str(error))
        return False

    @staticmethod
    def _to_record(message: Message) -> events.KafkaRecord:
        timestamp_type, timestamp = message.timestamp()
        raw_headers = message.headers() or []
        pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
        headers = tuple((str(name), value.encode() if isinstance(value, str) else value) for name, value in pairs)
        topic = message.topic()
        partition = message.partition()
        offset = message.offset()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        return events.KafkaRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=int(timestamp),
            timestamp_type=events.TIMESTAMP_TYPES.get(timestamp_type, "CREATE_TIME"),
            key=message.key(),
            value=message.value(),
            headers=headers,
        )

    # -- delivery -----------------------------------------------------------------------------------------------------

    def _deliver(self, records: list[events.KafkaRecord]) -> bool:
        """Invoke until success or retries are exhausted, then commit. False if stopped before that."""
        self.stats.batches += 1
        attempt = 0
        while True:
            attempt += 1
            payload = events.encode_event(events.build_event(records, self.config.source))
            first, last = records[0], records[-1]
            self.stats.invocations += 1
            self._emit(
                "invoke",
                records=len(records),
                bytes=len(payload),
                attempt=attempt,
                first=f"{first.partition_key}@{first.offset}",
                last=f"{last.partition_key}@{last.offset}",
            )
            outcome = self.invoker.invoke(payload)
            self._publish_metrics(outcome)
            if outcome.ok:
                self._emit("invoked", records=len(records), summary=outcome.summary)
                break
            self.stats.failed_invocations += 1
            self._emit("invoke-failed", attempt=attempt, error=outcome.describe())
            if 0 <= self.config.max_retries < attempt:
                if not self._discard(records, outcome, attempt, len(payload)):
                    return False
                break
            if self._sleep(self._backoff(attempt)):
                return False
            if self.config.retry_batching == "vary":
                records = self._rebatch(records)
                if not records:
                    # Stopping (nothing of this batch is committed), or its partitions were revoked meanwhile.
                    return not self._stop.is_set()
        if self.config.pause_before_commit_s:
            time.sleep(self.config.pause_before_commit_s)
        if self.config.freeze_before_first_commit and not self._frozen_once:
            self._frozen_once = True
            self._emit("freezing")
            os.kill(os.getpid(), signal.SIGSTOP)
        self._commit(records)
        self.stats.records += len(records)
        return True

    def _rebatch(self, failed: list[events.KafkaRecord]) -> list[events.KafkaRecord]:
        """The retry of a failed batch, collected again from the same offsets with another size limit.

        The failed batch goes back to the front of ``_carry`` (where it came from, in consumption order), so the retry
        starts at the same offset of each partition and never skips or reorders a partition's records. Its size
        limit is drawn from 1..batch_size, never the failed batch's size; the batch is smaller when fewer records
        are there to take.
        """
        self._carry[:0] = failed
        limit = self.config.batch_size
        if limit > 1:
            limit = self._rng.randint(1, limit - 1)
            if limit >= len(failed):
                limit += 1
        records = self._collect(limit)
        self.stats.rebatched_retries += 1
        self._emit("rebatched", previous=len(failed), limit=limit, records=len(records))
        return records

    def _discard(self, records: list[events.KafkaRecord], outcome: InvokeOutcome, attempts: int, size: int) -> bool:
        document = events.on_failure_record(
            records,
            self.config.source,
            function_arn=self.invoker.function_arn,
            condition="RetryAttemptsExhausted",
            invoke_count=attempts,
            payload_size=size,
            function_error=outcome.function_error or "Unhandled",
            status_code=outcome.status_code or 200,
        )
        return self._send_on_failure(document)

    def _discard_oversized(self, record: events.KafkaRecord, size: int) -> bool:
        document = events.on_failure_record(
            [record],
            self.config.source,
            function_arn=self.invoker.function_arn,
            condition="MaximumPayloadSizeExceeded",
            invoke_count=0,
            payload_size=size + events.EVENT_OVERHEAD_BYTES,
        )
        if not self._send_on_failure(document):
            return False
        self._commit([record])
        return True

    def _send_on_failure(self, document: dict[str, Any]) -> bool:
        """Send to the on-failure queue, retrying until it is accepted. False only if stopped first."""
        if not self.config.on_failure_queue_url or self.sqs is None:
            self._emit("discard-without-destination", record=document["KafkaBatchInfo"])
            self.stats.discarded_batches += 1
            return True
        attempt = 0
        while True:
            attempt += 1
            try:
                self.sqs.send_message(QueueUrl=self.config.on_failure_queue_url, MessageBody=json.dumps(document))
            except Exception as error:
                self._emit("on-failure-send-failed", attempt=attempt, error=f"{type(error).__name__}: {error}")
                if self._sleep(self._backoff(attempt)):
                    return False
                continue
            self.stats.discarded_batches += 1
            self._emit(
                "discarded",
                condition=document["requestContext"]["condition"],
                records=document["KafkaBatchInfo"]["recordsInfo"],
            )
            return True

    def _commit(self, records: list[events.KafkaRecord]) -> bool:
        """Commit past ``records`` (and whatever is still pending). False if the broker refused."""
        for record in records:
            key = (record.topic, record.partition)
            self._pending_commits[key] = max(self._pending_commits.get(key, 0), record.offset + 1)
        return self._flush_commits()

    def _flush_commits(self) -> bool:
        """One synchronous commit of every pending offset. A refusal is reported and counted, and the offsets stay
        pending for the next commit; nothing is reported as committed that the broker did not accept."""
        pending = dict(sorted(self._pending_commits.items()))
        named = {f"{topic}-{partition}": offset for (topic, partition), offset in pending.items()}
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in pending.items()], asynchronous=False
            )
        except KafkaException as error:
            self.stats.failed_commits += 1
            self._next_commit_try = time.monotonic() + self._backoff(self.stats.failed_commits)
            self._emit("commit-failed", offsets=named, error=str(error.args[0] if error.args else error))
            return False
        for key, offset in pending.items():
            if self._pending_commits.get(key) == offset:
                del self._pending_commits[key]
        self.stats.committed.update(named)
        self._emit("committed", offsets=named)
        return True

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): doubling, capped."""
        # The exponent is capped: with unlimited retries 2**1024 would overflow a float after ~1,000 attempts.
        return float(min(self.config.retry_backoff_s * 2 ** min(attempt - 1, 60), self.config.retry_backoff_max_s))

    def _sleep(self, seconds: float) -> bool:
        """Back off; True if a stop was requested meanwhile."""
        return self._stop.wait(seconds)

    # -- metrics and progress -----------------------------------------------------------------------------------------

    def _publish_metrics(self, outcome: InvokeOutcome) -> None:
        points = parse_emf(outcome.logs)
        if not points:
            return
        self.stats.add_metrics(totals(points))
        if self.cloudwatch is None:
            return
        try:
            put_metrics(self.cloudwatch, points)
        except Exception as error:
            self._emit("metrics-failed", error=f"{type(error).__name__}: {error}")

    def _refresh_lag(self) -> None:
        """Lag per partition: high watermark minus the committed offset (what is not archived yet)."""
        if not self._assigned:
            return
        try:
            committed = self._consumer.committed(
                [TopicPartition(p.topic, p.partition) for p in self._assigned], timeout=5
            )
        except Exception:
            return
        for tp in committed:
            try:
                # The high watermark of the last fetch response. Tansu 0.6's ListOffsets answer can lag behind the
                # log end (it was seen naming the last record batch's base offset + 1); its fetch responses do not.
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    low, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
            except Exception:  # noqa: S112 - lag is informational
                continue
            key = f"{tp.topic}-{tp.partition}"
            done = tp.offset if tp.offset >= 0 else low
            self.stats.lag[key] = max(0, high - done)

    def _maybe_progress(self) -> None:
        if time.monotonic() - self._last_progress < self.config.progress_interval_s:
            return
        self._last_progress = time.monotonic()
        self._refresh_lag()
        self._emit("progress", **self.stats.as_dict())

    def _emit(self, event: str, **fields: Any) -> None:
        line = {"t": round(time.time(), 3), "event": event, **fields}
        self.out.write(json.dumps(line, default=str) + "\n")
        self.out.flush()
