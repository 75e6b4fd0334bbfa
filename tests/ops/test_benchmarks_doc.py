"""docs/benchmarks.md shows the published run: its results tables are what bench/markdown.py renders from the tracked
bench/results.json, and every issue-14 target that run evaluated is in it."""

from __future__ import annotations

import json

from bench.markdown import DOC, END, RESULTS, START, render


def test_the_results_section_is_rendered_from_the_published_run() -> None:
    text = DOC.read_text()
    section = text[text.index(START) + len(START) : text.index(END)]
    assert section.strip() == render(json.loads(RESULTS.read_text())).strip(), "run `python -m bench.markdown`"


def test_the_published_run_evaluated_every_target() -> None:
    targets = json.loads(RESULTS.read_text())["targets"]
    assert set(targets) == {
        "ours_vs_floor",
        "peak_rss_vs_payload",
        "fanout_500_vs_ideal",
        "cold_start_vs_bare_powertools",
        "lambda_compute_usd_per_tb",
    }
    for name, target in targets.items():
        assert set(target["measured"]) >= set(target["goal"]), f"{name}: a goal without a measurement"


def test_the_throughput_bench_runs_every_variant_and_checks_they_agree() -> None:
    # One round of one size: not a measurement (timing is bench's business), a check that `make bench` still runs,
    # since its correctness checks (same records from every variant, fused == envelope route) raise inside it.
    from bench.__main__ import PRESETS, REFERENCES, throughput

    rows = throughput((1_000,), ("zstandard",), 1)
    assert {row["variant"] for row in rows} == {f"ours/{name}" for name in PRESETS} | set(REFERENCES)
    assert all(row["records"] == rows[0]["records"] > 0 for row in rows)
