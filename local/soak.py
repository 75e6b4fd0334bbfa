"""A seeded, randomized fault soak of the local pipeline: records in, faults injected over time, the full audit out.

    python -m local.soak --faults 50 --records 20000 --seed 7     # its own stack (instance "soak"), stopped after
    python -m local.soak --instance e2e --faults 20 --records 2000  # a stack that is up and deployed
    make soak                                                      # a long run: FAULTS, RECORDS, SEED

It produces ``records`` orders (with poison records, which the function must dead-letter) into a fresh topic, in
one chunk per fault, while the event-source-mapping emulator archives them with re-batched retries
(``--retry-batching vary``). Before each chunk's fault it waits a random moment, then injects one fault, drawn from
``FAULT_KINDS`` so that each kind comes equally often, in a seeded random order:

* the emulator SIGKILLed before an invocation, in the middle of one, or between an invocation and its commit (each
  kill is checked afterwards against the emulator's output: where it actually landed is reported);
* the function's S3 connections dropped, S3 ``503 SlowDown``, dead-letter-queue sends refused, a function timeout
  (an S3 PUT held past it), Lambda Invoke throttled (``429``);
* LocalStack frozen (SIGSTOP/SIGCONT of its process group, the function processes included);
* a commit the broker refuses (the emulator frozen past its session timeout while its function runs).

The function's S3 and SQS endpoints point at one ``FaultProxy`` and the emulator's at another (Invoke), for the
duration; the function's timeout is lowered. At the end every fault is cleared, the emulator drains the topic, and
``local.verify`` audits the archive against everything produced. ``run_soak`` returns a ``SoakResult`` (counts,
fault log, the audit) for tests to assert on and extend. ``converge`` then runs the compaction and the audit the
stack deploys, as their schedules would, and audits again: the archive's end state (``EndState``). The CLI does
both and exits 1 on a lost offset, a conflict, or a duplicate, uncompacted window or audit finding left after
compaction.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from archive_ops import verify
from archive_ops.archive_index import parse_key
from local import config, deploy, maintenance, produce, stack
from local.aws import client as aws_client
from local.esm.process import EmulatorProcess, Event
from local.faults import (
    LAMBDA_THROTTLED,
    S3_SLOW_DOWN,
    SQS_QUEUE_MISSING,
    FaultProxy,
    Rule,
    function_configuration,
    lambda_invoke,
    s3_put,
    s3_request,
    sqs_send,
)

FAULT_KINDS = (
    "kill-before-invoke",
    "kill-mid-invocation",
    "kill-before-commit",
    "s3-connections-dropped",
    "s3-slow-down",
    "dlq-send-failures",
    "function-timeout",
    "lambda-throttled",
    "localstack-frozen",
    "commit-refused",
)
# Where a kill is meant to land: the event it waits for, and the events that, printed after it, mean it landed later.
KILLS = {
    "kill-before-invoke": ("committed", {"invoke"}),
    "kill-mid-invocation": ("invoke", {"invoked", "invoke-failed"}),
    "kill-before-commit": ("invoked", {"committed", "commit-failed"}),
}
SESSION_TIMEOUT_MS = 2000  # Tansu accepts it: a killed emulator's partitions come back in ~4 s instead of ~11 s
PAUSE_BEFORE_COMMIT_S = 0.15  # room for "kill-before-commit" to land between the invocation and its commit
EVENT_WAIT_S = 60.0


@dataclass(frozen=True)
class SoakConfig:
    records: int = 20_000
    faults: int = 50
    seed: int = 0
    partitions: int = 3
    poison: int | None = None  # default: one per 1,000 records
    batch_size: int = 100
    function_timeout_s: int = 4
    kinds: tuple[str, ...] = FAULT_KINDS
    drain_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        problems = []
        if self.records < self.faults + 1:
            problems.append(f"records must be more than faults (one chunk per fault), got {self.records}")
        if self.faults < 0:
            problems.append(f"faults must be >= 0, got {self.faults}")
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown or not self.kinds:
            problems.append(f"kinds must be some of {', '.join(FAULT_KINDS)}, got {', '.join(unknown) or 'none'}")
        if problems:
            raise ValueError("invalid soak settings: " + "; ".join(problems))

    @property
    def poison_records(self) -> int:
        return self.poison if self.poison is not None else max(1, self.records // 1000)


@dataclass(frozen=True)
class Target:
    """A deployed local stack to soak: where its services are and what was deployed."""

    instance: str
    endpoints: config.Endpoints
    function: str
    bucket: str
    queue_url: str
    on_failure_queue_url: str | None = None
    localstack_pid: int | None = None  # None: external LocalStack, which the soak does not freeze

    @classmethod
    def from_instance(cls, instance: str) -> Target:
        state = stack.current(instance)
        outputs = deploy.load_outputs(instance)
        return cls(
            instance=instance,
            endpoints=state.endpoints,
            function=str(outputs["function"]),
            bucket=str(outputs["bucket"]),
            queue_url=str(outputs["queue_url"]),
            on_failure_queue_url=outputs.get("on_failure_queue_url"),
            localstack_pid=state.localstack.pid if state.localstack else None,
        )


@dataclass
class FaultRecord:
    kind: str
    at_s: float  # seconds since the soak started
    landed: bool  # the fault took effect (a kill at its stage, a rule that was hit, a refused commit, ...)
    detail: str = ""


@dataclass
class SoakResult:
    seed: int
    topic: str
    group: str
    bucket: str
    prefix: str
    records_produced: int
    poison_produced: int
    archived: int  # distinct offsets archived
    dead_lettered: int  # distinct offsets in the function's per-record dead letters
    lost_offsets: int  # produced, but neither archived nor dead-lettered (gaps, and offsets only in Kafka)
    duplicate_offsets: int  # archived in more than one object
    conflicts: int  # archived twice with different contents
    unexpected_dead_letters: int  # dead-lettered offsets that are not poison records
    faults: dict[str, int]  # injected, by kind
    faults_landed: dict[str, int]
    emulator_runs: int
    seconds: float
    fault_log: list[FaultRecord] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost_offsets == 0 and self.conflicts == 0 and self.unexpected_dead_letters == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        faults = ", ".join(
            f"{kind} {count} ({self.faults_landed.get(kind, 0)} landed)" for kind, count in self.faults.items()
        )
        return "\n".join(
            [
                f"soak seed {self.seed}: topic {self.topic}, {self.seconds:.0f} s, {self.emulator_runs} emulator runs",
                f"  records produced   {self.records_produced} ({self.poison_produced} poison)",
                f"  archived           {self.archived}",
                f"  dead-lettered      {self.dead_lettered} (not poison: {self.unexpected_dead_letters})",
                f"  lost offsets       {self.lost_offsets}",
                f"  duplicate offsets  {self.duplicate_offsets}",
                f"  conflicts          {self.conflicts}",
                f"  faults injected    {sum(self.faults.values())}: {faults}",
                "OK: nothing lost, no conflicts"
                if self.ok
                else "FAILED: offsets lost, conflicts or stray dead letters",
            ]
        )


class Soak:
    """One soak run against ``target``: see the module doc."""

    def __init__(self, target: Target, settings: SoakConfig, log: Callable[[str], None]) -> None:
        self.target = target
        self.settings = settings
        self.log = log
        self.rng = random.Random(settings.seed)  # noqa: S311 - fault schedule, not security
        self.topic = f"soak-{settings.seed}-{uuid.uuid4().hex[:6]}"
        self.group = f"{self.topic}-group"
        self.function_proxy = FaultProxy(target.endpoints.aws_endpoint)  # the function's S3 and SQS
        self.invoke_proxy = FaultProxy(target.endpoints.aws_endpoint)  # the emulator's Lambda Invoke
        self.produced: list[produce.Produced] = []
        self.emulator: EmulatorProcess | None = None
        self.emulator_runs = 0
        self.fault_log: list[FaultRecord] = []
        self.started = time.monotonic()

    # -- the run ------------------------------------------------------------------------------------------------------

    def run(self) -> SoakResult:
        kinds = [k for k in self.settings.kinds if k != "localstack-frozen" or self.target.localstack_pid]
        kinds = self.rng.sample(kinds, len(kinds))  # with fewer faults than kinds, a random few of them
        plan = [kinds[i % len(kinds)] for i in range(self.settings.faults)]
        self.rng.shuffle(plan)
        chunks = self._chunks(self.settings.records, self.settings.faults + 1)
        poison = self._chunks(self.settings.poison_records, self.settings.faults + 1)
        with ExitStack() as cleanup:
            for proxy in (self.function_proxy, self.invoke_proxy):
                proxy.start()
                cleanup.callback(proxy.stop)
            cleanup.enter_context(
                function_configuration(
                    aws_client("lambda", self.target.endpoints),
                    self.target.function,
                    timeout=self.settings.function_timeout_s,
                    AWS_ENDPOINT_URL_S3=self.function_proxy.url,
                    AWS_ENDPOINT_URL_SQS=self.function_proxy.url,
                )
            )
            cleanup.callback(self._stop_emulator)
            self._produce(chunks[0], poison[0], 0)
            self._start_emulator()
            for number, kind in enumerate(plan, start=1):
                time.sleep(self.rng.uniform(0.1, 0.6))
                self._ensure_emulator()
                # A dead-letter fault needs a poison record to dead-letter while it lasts.
                extra_poison = 1 if kind == "dlq-send-failures" else 0
                produce_chunk = functools.partial(self._produce, chunks[number], poison[number] + extra_poison, number)
                landed, detail = self._inject(kind, produce_chunk)
                self.fault_log.append(FaultRecord(kind, round(self._elapsed(), 1), landed, detail))
                self.log(f"[{self._elapsed():6.1f} s] fault {number}/{len(plan)}: {kind} -> {detail}")
            self.function_proxy.clear()
            self.invoke_proxy.clear()
            self._drain()
        return self._result()

    @staticmethod
    def _chunks(total: int, parts: int) -> list[int]:
        return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _produce(self, count: int, poison: int, chunk: int) -> None:
        if count <= 0:
            return
        self.produced += produce.produce_orders(
            self.target.endpoints.kafka_bootstrap,
            self.topic,
            count=count,
            partitions=self.settings.partitions,
            tombstones=min(2, count // 50),
            poison=poison,
            seed=self.settings.seed * 100_003 + chunk,
        )

    # -- the emulator -------------------------------------------------------------------------------------------------

    def _start_emulator(self) -> None:
        self.emulator_runs += 1
        args = [
            "--instance", self.target.instance, "--topics", self.topic, "--group-id", self.group,
            "--batch-size", str(self.settings.batch_size), "--max-retries", "-1", "--poison-header",
            "--retry-batching", "vary", "--retry-seed", str(self.settings.seed * 1000 + self.emulator_runs),
            "--retry-backoff-max", "2", "--session-timeout-ms", str(SESSION_TIMEOUT_MS),
            "--pause-before-commit", str(PAUSE_BEFORE_COMMIT_S), "--progress-interval", "5",
        ]  # fmt: skip
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.target.endpoints.kafka_bootstrap,
            "AWS_ENDPOINT_URL": self.invoke_proxy.url,
        }
        self.emulator = EmulatorProcess(args, env=env)

    def _ensure_emulator(self) -> None:
        if self.emulator is None or self.emulator.process.poll() is not None:
            if self.emulator is not None:
                self.log(f"the emulator exited by itself ({self.emulator.process.returncode}): {self.emulator.tail(5)}")
            self._start_emulator()

    def _stop_emulator(self) -> None:
        if self.emulator is not None and self.emulator.process.poll() is None:
            self.emulator.signal(signal.SIGTERM)
            try:
                self.emulator.wait(60)
            except Exception:
                self.emulator.kill()

    def _drain(self) -> None:
        """Wait until the group has committed every produced offset, then stop the emulator cleanly."""
        self._ensure_emulator()
        ends: dict[int, int] = {}
        for item in self.produced:
            ends[item.partition] = max(ends.get(item.partition, 0), item.offset + 1)
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while time.monotonic() < deadline:
            if self._committed(ends) == ends:
                break
            self._ensure_emulator()
            time.sleep(2)
        else:
            self.log(f"the emulator did not commit everything within {self.settings.drain_timeout_s:.0f} s")
        self._stop_emulator()

    def _committed(self, ends: dict[int, int]) -> dict[int, int]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.target.endpoints.kafka_bootstrap, "group.id": self.group})
        try:
            offsets = consumer.committed([TopicPartition(self.topic, p) for p in ends], timeout=10)
            return {tp.partition: tp.offset for tp in offsets}
        except Exception:
            return {}
        finally:
            consumer.close()

    # -- faults -------------------------------------------------------------------------------------------------------

    def _inject(self, kind: str, produce_chunk: Callable[[], None]) -> tuple[bool, str]:
        """Inject one fault of ``kind`` around the production of its chunk of records, so that it meets traffic."""
        if kind in KILLS:
            return self._kill(kind, produce_chunk)
        if kind == "commit-refused":
            return self._refuse_commit(produce_chunk)
        if kind == "localstack-frozen":
            return self._freeze_localstack(produce_chunk)
        return self._rule(kind, produce_chunk)

    def _freeze_localstack(self, produce_chunk: Callable[[], None]) -> tuple[bool, str]:
        seconds = self.rng.uniform(1.0, 3.0)
        pid = self.target.localstack_pid
        assert pid is not None
        with self._at("invoke", produce_chunk) as (event, _):
            os.killpg(pid, signal.SIGSTOP)  # LocalStack, and the function processes it started
            try:
                time.sleep(seconds)
            finally:
                os.killpg(pid, signal.SIGCONT)
        return event is not None, f"LocalStack frozen {seconds:.1f} s" + ("" if event else " (no invocation in flight)")

    def _rule(self, kind: str, produce_chunk: Callable[[], None]) -> tuple[bool, str]:
        """Arm a proxy rule, produce, wait until the rule is hit (up to ``EVENT_WAIT_S``), hold it, disarm it."""
        timeout = self.settings.function_timeout_s
        proxy = self.function_proxy
        seconds = self.rng.uniform(0.5, 2.5)  # held this long after the first hit
        if kind == "s3-connections-dropped":
            rule = Rule(s3_request, drop=True)
        elif kind == "s3-slow-down":
            rule = Rule(s3_put, S3_SLOW_DOWN, times=self.rng.randint(3, 20))
        elif kind == "dlq-send-failures":
            rule = Rule(sqs_send, SQS_QUEUE_MISSING)
        elif kind == "function-timeout":
            rule = Rule(s3_put, delay_s=timeout + 2, drop=True, times=1)  # a PUT that hangs past the timeout
        else:  # lambda-throttled
            proxy = self.invoke_proxy
            rule = Rule(lambda_invoke, LAMBDA_THROTTLED, times=self.rng.randint(1, 3))
        proxy.add(rule)
        produce_chunk()
        first_hit = time.monotonic() + EVENT_WAIT_S
        while time.monotonic() < first_hit and rule.served == 0:
            time.sleep(0.05)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (rule.times is not None and rule.served >= rule.times):
            time.sleep(0.05)
        proxy.remove(rule)
        return rule.served > 0, f"{rule.served} request(s) hit, held {seconds:.1f} s"

    @contextmanager
    def _at(self, wanted: str, produce_chunk: Callable[[], None]) -> Iterator[tuple[Event | None, int]]:
        """Produce, then wait for the emulator's next ``wanted`` event; yields it (None on timeout) and the index
        of the events that came after it."""
        emulator = self.emulator
        assert emulator is not None
        start = len(emulator.events)
        produce_chunk()
        event = emulator.wait_for(wanted, EVENT_WAIT_S, after=start)
        after = next((i + 1 for i in range(start, len(emulator.events)) if emulator.events[i] is event), start)
        yield event, after

    def _kill(self, kind: str, produce_chunk: Callable[[], None]) -> tuple[bool, str]:
        wanted, later = KILLS[kind]
        emulator = self.emulator
        assert emulator is not None
        with self._at(wanted, produce_chunk) as (event, after):
            emulator.kill()
        self._start_emulator()
        if event is None:
            return False, f"no '{wanted}' within {EVENT_WAIT_S:.0f} s; killed anyway"
        printed = [e.get("event") for e in emulator.events[after:]]
        landed = not (later & set(printed))
        return landed, f"killed after '{wanted}'" + ("" if landed else f", but it had printed {printed}")

    def _refuse_commit(self, produce_chunk: Callable[[], None]) -> tuple[bool, str]:
        emulator = self.emulator
        assert emulator is not None
        # Frozen while its function runs: the commit after that invocation comes when the broker has dropped it.
        with self._at("invoke", produce_chunk) as (event, after):
            if event is None:
                return False, "no invocation to freeze after"
            emulator.signal(signal.SIGSTOP)
            time.sleep(SESSION_TIMEOUT_MS / 1000 + 2)
            emulator.signal(signal.SIGCONT)
        refused = emulator.wait_for("commit-failed", 15, after=after)
        return refused is not None, "commit refused: " + (str(refused["error"]) if refused else "no, it went through")

    # -- the verdict --------------------------------------------------------------------------------------------------

    def _result(self) -> SoakResult:
        audit = completeness(self.target, self.topic, self.group)
        parts = audit["partitions"]
        poison = {(p.partition, p.offset) for p in self.produced if p.kind == "poison"}
        dead = {
            (part["partition"], offset)
            for part in parts
            for first, last in part["deadLettered"]
            for offset in range(first, last + 1)
        }
        return SoakResult(
            seed=self.settings.seed,
            topic=self.topic,
            group=self.group,
            bucket=self.target.bucket,
            prefix=f"topics/{self.topic}/",
            records_produced=len(self.produced),
            poison_produced=len(poison),
            archived=sum(part["archivedRecords"] for part in parts),
            dead_lettered=len(dead),
            lost_offsets=audit["gapCount"] + audit["notArchivedCount"],
            duplicate_offsets=audit["duplicateCount"],
            conflicts=audit["conflictCount"],
            unexpected_dead_letters=len(dead - poison),
            faults=dict(Counter(record.kind for record in self.fault_log)),
            faults_landed=dict(Counter(record.kind for record in self.fault_log if record.landed)),
            emulator_runs=self.emulator_runs,
            seconds=round(self._elapsed(), 1),
            fault_log=self.fault_log,
            audit=audit,
        )


def completeness(target: Target, topic: str, group: str) -> dict[str, Any]:
    """``verify``'s audit of ``topic``: the archive and both queues against everything produced (high watermark)."""
    return verify.audit(
        s3=aws_client("s3", target.endpoints),
        bucket=target.bucket,
        prefix=f"topics/{topic}/",
        sqs=aws_client("sqs", target.endpoints),
        queue_url=target.queue_url,
        on_failure_queue_url=target.on_failure_queue_url,
        bootstrap=target.endpoints.kafka_bootstrap,
        topics=[topic],
        group=group,
        expect="high",
        visibility_timeout=5,
    )


# The deployed audit's figures that must all be 0 once the archive has converged.
AUDIT_FINDINGS = ("GapOffsets", "DuplicateOffsets", "ConflictOffsets", "PendingCompactions", "RedundantObjects")


@dataclass
class EndState:
    """The archive after the deployed compaction and audit ran on the soaked topic, as their schedules would."""

    groups_queued: int  # by the compaction planner
    objects: int  # the topic's objects afterwards
    uncompacted_objects: int  # of those, objects still under a function's (first-offset) name
    lost_offsets: int
    duplicate_offsets: int
    conflicts: int
    archived: int
    audit: dict[str, Any]  # the deployed audit's figures for the topic (GapOffsets, DuplicateOffsets, ...)

    @property
    def ok(self) -> bool:
        counts = (self.lost_offsets, self.duplicate_offsets, self.conflicts, self.uncompacted_objects)
        return not any(counts) and all(self.audit.get(name) == 0 for name in AUDIT_FINDINGS)

    def summary(self) -> str:
        figures = ", ".join(f"{name} {value}" for name, value in sorted(self.audit.items()))
        return "\n".join(
            [
                f"after the deployed compaction ({self.groups_queued} group(s) queued) and audit:",
                f"  objects            {self.objects} ({self.uncompacted_objects} not compacted)",
                f"  archived           {self.archived}",
                f"  lost offsets       {self.lost_offsets}",
                f"  duplicate offsets  {self.duplicate_offsets}",
                f"  conflicts          {self.conflicts}",
                f"  deployed audit     {figures}",
                "OK: every offset exactly once" if self.ok else "FAILED: the archive did not converge",
            ]
        )


def converge(target: Target, result: SoakResult, *, timeout: float = 600) -> EndState:
    """Run the stack's compaction (planner, then its workers through the work queue) and audit on the soaked topic,
    inside LocalStack, then audit the archive again against Kafka: the end state a deployment reaches."""
    outputs = deploy.load_outputs(target.instance)
    lambda_client = aws_client("lambda", target.endpoints)
    planned, keys = maintenance.compact(
        lambda_client=lambda_client,
        sqs=aws_client("sqs", target.endpoints),
        s3=aws_client("s3", target.endpoints),
        outputs=outputs,
        topic=result.topic,
        timeout=timeout,
    )
    audited = maintenance.audit(lambda_client=lambda_client, outputs=outputs)
    after = completeness(target, result.topic, result.group)
    refs = [parse_key(key) for key in keys]
    return EndState(
        groups_queued=int(planned.get("groupsQueued", 0)),
        objects=len(keys),
        uncompacted_objects=sum(1 for ref in refs if ref is None or ref.last_offset is None),
        lost_offsets=after["gapCount"] + after["notArchivedCount"],
        duplicate_offsets=after["duplicateCount"],
        conflicts=after["conflictCount"],
        archived=sum(part["archivedRecords"] for part in after["partitions"]),
        audit=dict(audited.get("topics", {}).get(result.topic, {})),
    )


def run_soak(target: Target, settings: SoakConfig, log: Callable[[str], None] = print) -> SoakResult:
    """Run one soak (see the module doc) and return its counts, fault log and audit."""
    return Soak(target, settings, log).run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--faults", type=int, default=50)
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--poison", type=int, default=None, help="poison records (default: one per 1,000)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds to draw from")
    p.add_argument("--instance", default="soak", help="local stack instance; started and deployed if it is not up")
    p.add_argument("--keep", action="store_true", help="leave a stack this run started running")
    p.add_argument("--json", type=str, default=None, help="also write the result (and the audit) to this file")
    p.add_argument(
        "--no-compaction",
        action="store_true",
        help="stop after the soak's own audit (by default the deployed compaction and audit run after it, and any "
        "duplicate left, pending compaction or audit finding fails the run)",
    )
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    try:
        settings = SoakConfig(
            records=args.records,
            faults=args.faults,
            seed=seed,
            partitions=args.partitions,
            poison=args.poison,
            batch_size=args.batch_size,
            kinds=tuple(k for k in args.kinds.split(",") if k),
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started_here = stack.load_state(args.instance) is None
    try:
        if started_here:
            stack.install()
            stack.up(args.instance)
            deploy.deploy(args.instance)
        print(f"soak: seed {seed}, {settings.faults} faults, {settings.records} records, instance {args.instance}")
        target = Target.from_instance(args.instance)
        result = run_soak(target, settings)
        print(result.summary())
        end_state = None if args.no_compaction else converge(target, result)
        if end_state is not None:
            print(end_state.summary())
    except (RuntimeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if started_here and not args.keep:
            stack.down(args.instance)
    if args.json:
        with open(args.json, "w") as out:
            document = {**result.as_dict(), "endState": None if end_state is None else asdict(end_state)}
            json.dump(document, out, indent=2, default=str)
    return 0 if result.ok and (end_state is None or end_state.ok) else 1


if __name__ == "__main__":
    sys.exit(main())
