"""docs/benchmarks.md's request-cost table is what bench/request_costs.py computes, and its counts follow the code."""

from __future__ import annotations

from bench.request_costs import PAYLOAD_PER_BATCH, TB, row, table
from infra import PROJECT_ROOT


def test_the_documented_table_is_the_models_output() -> None:
    assert table() in (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()


def test_counts() -> None:
    six = row(6)
    assert six.objects_written == TB / PAYLOAD_PER_BATCH * 6  # one object per partition per batch
    # Compaction: a GET and a HEAD per input, plus a GET to verify each output; the audit reads only the outputs.
    assert six.compaction_gets == 2 * six.objects_written + six.compacted_objects
    assert six.audit_gets == six.compacted_objects == row(500).compacted_objects
    assert row(100).write_puts_usd > 16 * six.write_puts_usd
