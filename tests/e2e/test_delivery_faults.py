"""Delivery faults end to end: the emulator killed while the function runs, the broker restarted, a commit the
broker refuses, and two emulators in one consumer group rebalancing during a batch. Each ends with the full archive
check: every produced offset archived or dead-lettered, no conflicts, the audit complete.

Everything is real: Tansu, LocalStack, the deployed function. ``local/faults.py`` only slows the function's S3 PUTs
down (so that a batch is in flight long enough to be interrupted); the commit is refused by the broker itself, for
an emulator frozen past its session timeout (as a long GC pause or a stalled host would).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from local import stack
from local.esm.process import EmulatorProcess
from local.faults import FaultProxy, Rule, s3_put
from tests.e2e.conftest import (
    INSTANCE,
    Deployed,
    assert_archive_matches,
    committed,
    emulator_args,
    function_configuration,
    log_end,
    produce_into,
)

pytestmark = pytest.mark.e2e

SESSION_TIMEOUT_S = 6  # the emulator's consumer-group session timeout (its default)


def test_killed_in_the_middle_of_an_invocation_then_restarted(
    local_stack: Deployed, topic: str, fault_proxy: FaultProxy
) -> None:
    produced = produce_into(local_stack, topic, count=120, partitions=2, tombstones=1, poison=2, seed=31)
    held = fault_proxy.add(Rule(s3_put, delay_s=4, times=2))  # the first batch's PUTs take 4 s
    with function_configuration(local_stack, AWS_ENDPOINT_URL_S3=fault_proxy.url):
        first = EmulatorProcess(emulator_args(topic, "--batch-size", "30", "--poison-header"))
        try:
            assert first.wait_for("invoke", 60), first.tail()
            time.sleep(1.5)  # the function is running: its PUTs are being held
            assert held.served >= 1
        finally:
            first.kill()
        assert not first.of("invoked"), "the kill was meant to land while the function ran"
        assert all(offset < 0 for offset in committed(local_stack, topic, 2).values())

        # The killed invocation goes on inside LocalStack and finishes; the restart redelivers from the committed
        # offsets (nothing) alongside it.
        second = EmulatorProcess(emulator_args(topic, "--batch-size", "30", "--poison-header", "--until-idle", "2"))
        assert second.wait(180) == 0, second.tail()

    assert_archive_matches(local_stack, topic, produced, exactly_once=False)
    assert committed(local_stack, topic, 2) == log_end(produced)


@dataclass
class PersistentBroker:
    """A Tansu of its own whose topics and offsets live in a LocalStack bucket, so it can stop and start again."""

    deployed: Deployed
    port: int
    bucket: str
    service: stack.Service | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        aws = self.deployed.endpoints.aws_env()
        self.service = stack.start_tansu(
            INSTANCE,
            self.port,
            storage=f"s3://{self.bucket}/",
            storage_env={
                "AWS_ENDPOINT": self.deployed.endpoints.aws_endpoint,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": aws["AWS_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": aws["AWS_SECRET_ACCESS_KEY"],
                "AWS_DEFAULT_REGION": aws["AWS_DEFAULT_REGION"],
            },
        )

    def stop(self) -> None:
        if self.service is not None:
            stack.stop_service(self.service)
            self.service = None


@pytest.fixture
def persistent_broker(local_stack: Deployed) -> Iterator[PersistentBroker]:
    bucket = f"e2e-tansu-{uuid.uuid4().hex[:8]}"
    local_stack.client("s3").create_bucket(Bucket=bucket)
    broker = PersistentBroker(local_stack, stack.free_port(), bucket)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_broker_restart(local_stack: Deployed, topic: str, persistent_broker: PersistentBroker) -> None:
    broker = persistent_broker
    produced = produce_into(local_stack, topic, broker.url, count=300, partitions=2, tombstones=2, poison=2, seed=32)
    emulator = EmulatorProcess(
        emulator_args(topic, "--batch-size", "20", "--poison-header", "--until-idle", "3"),
        env={"KAFKA_BOOTSTRAP_SERVERS": broker.url},
    )
    try:
        assert emulator.wait_for("committed", 60), emulator.tail()
        broker.stop()  # SIGTERM to Tansu, mid-stream
        time.sleep(2)
        broker.start()  # same port, same storage
        assert emulator.wait(240) == 0, emulator.tail()
    finally:
        emulator.kill()
    stopped = emulator.of("stopped")[-1]
    assert stopped["records"] >= 300 - 20  # it went on after the restart (at most one batch was done before)

    assert_archive_matches(local_stack, topic, produced, exactly_once=False, bootstrap=broker.url)
    assert committed(local_stack, topic, 2, broker.url) == log_end(produced)


def wait_until_stopped(pid: int, timeout: float) -> bool:
    """Whether the process is in the stopped state ("T" in /proc/<pid>/stat) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rpartition(")")[2].split()[0] == "T":
                return True
        time.sleep(0.05)
    return False


def take_over_partition(deployed: Deployed, topic: str, *, timeout: float) -> bool:
    """Join ``topic``'s consumer group as another member until the broker assigns it a partition, then leave
    (committing nothing). True if a partition was assigned within ``timeout`` seconds."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": deployed.endpoints.kafka_bootstrap,
            "group.id": f"{topic}-group",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_S * 1000,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            consumer.poll(0.5)
            if consumer.assignment():
                return True
        return False
    finally:
        consumer.close()


def test_a_commit_the_broker_refuses_is_reported_and_the_batch_comes_again(local_stack: Deployed, topic: str) -> None:
    produced = produce_into(local_stack, topic, count=100, partitions=1, tombstones=1, poison=1, seed=33)
    emulator = EmulatorProcess(
        emulator_args(
            topic, "--batch-size", "25", "--freeze-before-first-commit", "--poison-header", "--until-idle", "3"
        )
    )
    try:
        assert emulator.wait_for("freezing", 60), emulator.tail()
        (invoked,) = emulator.of("invoked")
        # It stopped itself between the invocation and its commit (as in a long GC pause or on a stalled host).
        # Another member joins meanwhile and is given the partition once the broker has dropped the frozen one
        # (session timeout); the new generation makes the broker refuse the commit that comes when it wakes up.
        # Without the other member, when a broker notices the expired session is its own business: Tansu, for one,
        # may accept that commit and drop the member just after.
        assert wait_until_stopped(emulator.process.pid, 10)
        assert take_over_partition(local_stack, topic, timeout=SESSION_TIMEOUT_S * 5)
        emulator.signal(signal.SIGCONT)
        assert emulator.wait(180) == 0, emulator.tail()
    finally:
        emulator.kill()

    (refused, *_) = emulator.of("commit-failed")
    assert refused["offsets"] == {f"{topic}-0": invoked["summary"]["partitions"][f"{topic}-0"]["lastOffset"] + 1}
    assert "UNKNOWN_MEMBER_ID" in refused["error"] or "ILLEGAL_GENERATION" in refused["error"]
    assert not [e for e in emulator.of("committed") if e["t"] < refused["t"]], "printed as committed before"
    # At least once: the first batch was delivered again after the rebalance.
    first_batch = emulator.of("invoke")[0]["first"]
    assert len([e for e in emulator.of("invoke") if e["first"] == first_batch]) >= 2
    assert emulator.of("stopped")[-1]["failed_commits"] >= 1

    assert_archive_matches(local_stack, topic, produced, exactly_once=False)
    assert committed(local_stack, topic, 1) == log_end(produced)


def test_two_emulators_in_one_group_rebalance_during_a_batch(
    local_stack: Deployed, topic: str, fault_proxy: FaultProxy
) -> None:
    produced = produce_into(local_stack, topic, count=400, partitions=4, tombstones=2, poison=2, seed=34)
    args = emulator_args(topic, "--batch-size", "50", "--poison-header", "--until-idle", "4")
    fault_proxy.add(Rule(s3_put, delay_s=3, times=4))  # the first batch's PUTs take 3 s
    with function_configuration(local_stack, AWS_ENDPOINT_URL_S3=fault_proxy.url):
        first = EmulatorProcess(args)
        second: EmulatorProcess | None = None
        try:
            assert first.wait_for("invoke", 60), first.tail()
            second = EmulatorProcess(args)  # joins the group while the first one's batch is in flight
            joined_at = time.time()
            assert first.wait(240) == 0, first.tail()
            assert second.wait(240) == 0, second.tail()
        finally:
            first.kill()
            if second is not None:
                second.kill()

    # The rebalance came while the first emulator's batch was in flight: that batch finished after the second
    # emulator started, and the first emulator then gave partitions up.
    first_done = first.of("invoked")[0]
    assert first_done["t"] > joined_at
    assert [e for e in first.of("revoked") if e["t"] > first_done["t"]]
    assert any(e["partitions"] for e in second.of("assigned"))
    assert second.of("invoked"), "the second emulator archived nothing"

    assert_archive_matches(local_stack, topic, produced, exactly_once=False)
    assert committed(local_stack, topic, 4) == log_end(produced)
