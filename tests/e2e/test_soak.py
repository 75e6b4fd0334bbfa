"""A seeded randomized fault soak through the whole local pipeline (``local/soak.py``): 50 faults of every kind --
the emulator killed at each stage, S3 connections dropped, S3 throttling, dead-letter sends refused, function
timeouts, Lambda throttling, LocalStack frozen, commits refused -- with re-batched retries, then the full audit.

Nothing may be lost and no offset may be archived with two different contents. Duplicate offsets (a retry that came
back with other batch boundaries) are allowed until the deployed compaction runs; after it and the deployed audit,
every offset is held exactly once.

``SOAK_SEED`` picks another fault schedule; a failure message names the seed so the run can be repeated.
"""

from __future__ import annotations

import os

import pytest

from local.soak import FAULT_KINDS, SoakConfig, SoakResult, Target, converge, run_soak
from tests.e2e.conftest import INSTANCE, Deployed

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("SOAK_SEED", "16"))
FAULTS = 50


@pytest.fixture(scope="module")
def target(local_stack: Deployed) -> Target:
    return Target(
        instance=INSTANCE,
        endpoints=local_stack.endpoints,
        function=local_stack.function,
        bucket=local_stack.bucket,
        queue_url=local_stack.queue_url,
        on_failure_queue_url=local_stack.on_failure_queue_url,
        localstack_pid=local_stack.localstack_pid,
    )


@pytest.fixture(scope="module")
def soak(target: Target) -> SoakResult:
    return run_soak(target, SoakConfig(records=2500, faults=FAULTS, seed=SEED))


def test_a_soak_of_random_faults_loses_nothing(soak: SoakResult) -> None:
    summary = soak.summary()
    assert soak.lost_offsets == 0, summary
    assert soak.conflicts == 0, summary
    assert soak.unexpected_dead_letters == 0, summary
    # Every produced record is accounted for: archived, or (the poison ones) dead-lettered with their payload.
    assert soak.archived + soak.dead_lettered == soak.records_produced, summary
    assert soak.dead_lettered == soak.poison_produced > 0, summary
    assert soak.audit["complete"], summary


def test_the_soak_injected_every_kind_of_fault(soak: SoakResult, local_stack: Deployed) -> None:
    kinds = set(FAULT_KINDS) if local_stack.localstack_pid else set(FAULT_KINDS) - {"localstack-frozen"}
    assert sum(soak.faults.values()) == FAULTS
    assert set(soak.faults) == kinds
    # A fault "lands" when it meets traffic at its stage; timing can make a few miss, not most.
    assert sum(soak.faults_landed.values()) >= FAULTS * 0.8, soak.summary()


def test_soak_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="records must be more than faults"):
        SoakConfig(records=10, faults=50)
    with pytest.raises(ValueError, match="kinds must be some of"):
        SoakConfig(kinds=("kill-everything",))
    assert SoakConfig(records=20_000).poison_records == 20


def test_after_the_soak_the_deployed_compaction_and_audit_leave_every_offset_exactly_once(
    soak: SoakResult, target: Target
) -> None:
    """The end state: the compaction and the audit the stack deploys, invoked in LocalStack as their schedules
    would, turn the soaked archive into one where every offset is held once, nothing is lost and nothing conflicts,
    and every window is compacted (``make soak`` ends the same way)."""
    end = converge(target, soak)
    summary = f"{soak.summary()}\n{end.summary()}"
    assert end.groups_queued >= 1, summary
    assert end.objects > 0, summary
    assert end.uncompacted_objects == 0, summary
    assert (end.lost_offsets, end.duplicate_offsets, end.conflicts) == (0, 0, 0), summary
    assert end.archived == soak.archived == end.audit["ArchivedRecords"], summary
    findings = ("GapOffsets", "DuplicateOffsets", "ConflictOffsets", "PendingCompactions", "RedundantObjects")
    assert {name: end.audit[name] for name in findings} == dict.fromkeys(findings, 0), summary
    assert end.ok, summary
