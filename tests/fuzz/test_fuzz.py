"""The fuzz suite's fast part (``make test``): a seeded run of mutated events, and a property test that puts any
JSON value hypothesis can think of into any field of a record. ``make fuzz`` runs 100,000 events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.events import FIELDS, TOPICS, well_formed_record
from tests.fuzz.harness import Harness, harness, run

SEEDED_EVENTS = 800  # about 10 s on one idle core; make fuzz runs 100,000

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def fuzz() -> Iterator[Harness]:
    with harness() as running:
        yield running


def test_a_seeded_fuzz_run_finds_nothing() -> None:
    counts = run(SEEDED_EVENTS, seed=20_240_501)
    assert counts.bad == 0, "\n".join([counts.summary(), *counts.examples])
    # The run reached every outcome, so "nothing found" means something.
    assert counts.archived > 1_000
    assert counts.dead_lettered > 100
    assert counts.malformed_events > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    field=st.sampled_from([*FIELDS, "extra", "headers-entry", "headers-value"]),
    value=JSON_VALUES,
)
def test_any_json_in_any_field_is_archived_or_dead_lettered_exactly(
    fuzz: Harness, data: st.DataObject, field: str, value: Any
) -> None:
    rnd = data.draw(st.randoms(use_true_random=False))
    topic = data.draw(st.sampled_from(TOPICS))
    record = well_formed_record(rnd, topic, 0, 5)
    if field == "headers-entry":
        record["headers"] = [*record["headers"], value]
    elif field == "headers-value":
        record["headers"] = [*record["headers"], {"h": value}]
    else:
        record[field] = value
    neighbour = well_formed_record(rnd, topic, 0, 6)
    event = {"eventSource": "SelfManagedKafka", "records": {f"{topic}-0": [record, neighbour]}}
    archiver = fuzz.archivers[data.draw(st.integers(0, len(fuzz.archivers) - 1))]

    before = fuzz.counts.bad
    fuzz.check(json.dumps(event), archiver)

    assert fuzz.counts.bad == before, "\n".join(fuzz.counts.examples[-3:])
