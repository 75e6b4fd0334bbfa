"""``make bench``: throughput, memory, cold start and cost per TB of the archiver, against references.

    python -m bench                 # everything, a few minutes on 2 cores; writes bench/results.json
    python -m bench --quick         # fewer rounds and cases, for a fast look
    python -m bench --e2e           # also end to end against the local stack (LocalStack), if it can start

Every number comes from this one process run (memory and cold start from fresh child processes), variants
interleaved round by round; see docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import fastavro

from archiver import encoding
from archiver.decoding import Envelope
from archiver.settings import CODECS, DEFAULT_CODEC, PARTITIONERS, Codec, Partitioner
from bench import coldstart, cost, data, memory, variants
from bench.timing import interleaved

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
VALUE_SIZES = (100, 1_000, 10_000)
SYNC_INTERVALS = (64 << 10, 256 << 10, 1 << 20, 4 << 20)

TARGETS = {
    "ours_vs_raw": 0.8,
    "ours_vs_naive": 3.0,
    "peak_rss_vs_payload": 2.5,
    "cold_start_ms": 300.0,
    "lambda_compute_usd_per_tb": 0.50,
}


def throughput(sizes: tuple[int, ...], codecs: tuple[str, ...], rounds: int) -> list[dict[str, Any]]:
    """Every variant on the same batch, interleaved; one row per (value size, codec, variant)."""
    rows: list[dict[str, Any]] = []
    for size in sizes:
        batch = data.full_batch(size)
        for codec_name in codecs:
            codec = cast("Codec", codec_name)
            runners: dict[str, variants.Variant] = {"raw": variants.raw(codec), "naive": variants.naive(codec)}
            runners["ours/before"] = variants.ours_before(codec)
            for partitioner in PARTITIONERS:
                runners[f"ours/{partitioner}"] = variants.ours(codec, cast("Partitioner", partitioner))
            outputs = {name: run(batch.event) for name, run in runners.items()}
            check_same_records(outputs, batch)
            timed: dict[str, Callable[[], object]] = {name: _bound(run, batch.event) for name, run in runners.items()}
            timed["floor"] = _bound(variants.floor(codec), batch.event)
            outputs["floor"] = []
            timings = interleaved(timed, rounds=rounds)
            for name, timing in timings.items():
                rows.append(
                    {
                        "value_size": size,
                        "records": batch.records,
                        "payload_bytes": batch.payload_bytes,
                        "event_bytes": batch.event_bytes,
                        "codec": codec_name,
                        "variant": name,
                        "objects": len(outputs[name]),
                        "output_bytes": sum(len(body) for body in outputs[name]),
                        "best_s": timing.best,
                        "median_s": timing.median,
                        "best_wall_s": timing.best_wall,
                        "median_wall_s": timing.median_wall,
                        "records_per_s": batch.records / timing.best,
                        "payload_mb_per_s": batch.payload_bytes / timing.best / 1e6,
                    }
                )
            print(
                f"  {size:>6} B values, {codec_name:<9}: "
                + ", ".join(f"{n} {t.best * 1e3:.0f} ms" for n, t in timings.items())
            )
    return rows


def _bound(run: Callable[[dict[str, Any]], object], event: dict[str, Any]) -> Callable[[], object]:
    return lambda: run(event)


def check_same_records(outputs: dict[str, variants.Bodies], batch: data.Batch) -> None:
    """Every variant's Avro output must decode to the same records, and ours must be byte-identical when rerun."""
    expected = None
    for name, bodies in outputs.items():
        rows = variants.decoded_records(bodies)
        assert len(rows) == batch.records, f"{name}: {len(rows)} records, expected {batch.records}"
        if expected is None:
            expected = rows
        assert rows == expected, f"{name} decodes to different records than the other variants"


def deterministic_check(batch: data.Batch) -> None:
    """Archiving the same batch twice (fresh archivers) must give byte-identical objects."""
    for codec in CODECS:
        first = variants.ours(cast("Codec", codec))(batch.event)
        second = variants.ours(cast("Codec", codec))(batch.event)
        assert first == second, f"{codec}: archiving the same batch twice gave different bytes"


def decode_claim(rounds: int) -> list[dict[str, Any]]:
    """decoding.py's claim: Powertools' KafkaEvent data class versus our dict walk, decode only, same records."""
    rows = []
    for size in VALUE_SIZES:
        batch = data.full_batch(size)
        expected = variants.decode_ours(batch.event)
        assert expected == variants.decode_kafka_event(batch.event) == variants.decode_checked(batch.event)
        assert expected == variants.decode_consumer_records(batch.event)
        timings = interleaved(
            {
                "ours": _bound(variants.decode_ours, batch.event),
                "ours_checked": _bound(variants.decode_checked, batch.event),
                "kafka_event": _bound(variants.decode_kafka_event, batch.event),
                "consumer_records": _bound(variants.decode_consumer_records, batch.event),
            },
            rounds=rounds,
        )
        rows.append(
            {
                "value_size": size,
                "records": batch.records,
                "ours_best_s": timings["ours"].best,
                "ours_checked_best_s": timings["ours_checked"].best,
                "kafka_event_best_s": timings["kafka_event"].best,
                "kafka_event_vs_ours": timings["kafka_event"].best / timings["ours"].best,
                "kafka_event_vs_ours_checked": timings["kafka_event"].best / timings["ours_checked"].best,
                "consumer_records_best_s": timings["consumer_records"].best,
                "consumer_records_vs_ours": timings["consumer_records"].best / timings["ours"].best,
            }
        )
    return rows


def encoder_comparison(rounds: int) -> list[dict[str, Any]]:
    """Encode only, same records: the specialised envelope writer against ``fastavro.writer`` (byte-identical)."""
    rows = []
    for size in VALUE_SIZES:
        records = variants.decode_ours(data.full_batch(size).event)
        for codec in ("null", DEFAULT_CODEC):
            ours = encoding.encode_records(records, codec=codec, key="k")
            assert ours == encoding.fastavro_encode_records(records, codec=codec, key="k"), "encoders disagree"

            def specialised(records: list[Envelope] = records, codec: str = codec) -> bytes:
                return encoding.encode_records(records, codec=codec, key="k")

            def general(records: list[Envelope] = records, codec: str = codec) -> bytes:
                return encoding.fastavro_encode_records(records, codec=codec, key="k")

            timings = interleaved({"specialised": specialised, "fastavro": general}, rounds=rounds)
            rows.append(
                {
                    "value_size": size,
                    "records": len(records),
                    "codec": codec,
                    "specialised_best_s": timings["specialised"].best,
                    "fastavro_best_s": timings["fastavro"].best,
                    "speedup": timings["fastavro"].best / timings["specialised"].best,
                }
            )
    return rows


def sync_intervals(rounds: int) -> list[dict[str, Any]]:
    """Block size versus compression and speed: the envelope records of a 1 KB batch, encoded with each interval."""
    batch = data.full_batch(1_000)
    records = variants.decode_ours(batch.event)
    rows = []
    for codec in ("deflate", "snappy", "zstandard"):
        sizes: dict[str, int] = {}
        runs: dict[str, Callable[[], object]] = {}
        for interval in SYNC_INTERVALS:

            def write(interval: int = interval, codec: str = codec) -> bytes:
                saved = encoding.SYNC_INTERVAL
                encoding.SYNC_INTERVAL = interval  # read by the block builder at each call
                try:
                    return encoding.encode_records(records, codec=codec, key="k")
                finally:
                    encoding.SYNC_INTERVAL = saved

            sizes[str(interval)] = len(write())
            runs[str(interval)] = write
        timings = interleaved(runs, rounds=rounds)
        for interval in SYNC_INTERVALS:
            rows.append(
                {
                    "codec": codec,
                    "sync_interval": interval,
                    "output_bytes": sizes[str(interval)],
                    "size_vs_payload": sizes[str(interval)] / batch.payload_bytes,
                    "best_s": timings[str(interval)].best,
                }
            )
    return rows


def codec_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per value size and codec: stored bytes per payload byte and the archiver's throughput (default partitioner)."""
    return [
        {
            "value_size": row["value_size"],
            "codec": row["codec"],
            "size_vs_payload": row["output_bytes"] / row["payload_bytes"],
            "payload_mb_per_s": row["payload_mb_per_s"],
            "best_s": row["best_s"],
        }
        for row in results["throughput"]
        if row["variant"] == "ours/default"
    ]


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "fastavro": fastavro.__version__,
    }


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The headline ratios (default codec and partitioner, per value size)."""
    by_key = {(r["value_size"], r["codec"], r["variant"]): r for r in results["throughput"]}
    headline = []
    for size in sorted({r["value_size"] for r in results["throughput"]}):
        ours = by_key[(size, DEFAULT_CODEC, "ours/default")]
        before = by_key[(size, DEFAULT_CODEC, "ours/before")]
        raw = by_key[(size, DEFAULT_CODEC, "raw")]
        naive = by_key[(size, DEFAULT_CODEC, "naive")]
        floor = by_key[(size, DEFAULT_CODEC, "floor")]
        headline.append(
            {
                "value_size": size,
                "records": ours["records"],
                "ours_ms": ours["best_s"] * 1e3,
                "ours_records_per_s": ours["records_per_s"],
                "ours_mb_per_s": ours["payload_mb_per_s"],
                "ours_vs_raw": raw["best_s"] / ours["best_s"],
                "ours_vs_naive": naive["best_s"] / ours["best_s"],
                "ours_vs_before": before["best_s"] / ours["best_s"],
                "floor_vs_naive": naive["best_s"] / floor["best_s"],
                "raw_vs_naive": naive["best_s"] / raw["best_s"],
            }
        )
    return {"codec": DEFAULT_CODEC, "partitioner": "default", "by_value_size": headline}


def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    """Each target per value size (default codec and partitioner), and whether it is met at every size."""
    headline = {row["value_size"]: row for row in results["summary"]["by_value_size"]}
    memory_rows = {row["value_size"]: row for row in results["memory"] if row["variant"] == "ours"}
    cost_rows = {row["value_size"]: row for row in results["cost"]["lambda_by_value_size"]}
    cold = results["cold_start"]["default"]["median_ms"]
    measured: dict[str, tuple[float, bool, dict[int, float]]] = {
        "ours_vs_raw": (TARGETS["ours_vs_raw"], True, {s: r["ours_vs_raw"] for s, r in headline.items()}),
        "ours_vs_naive": (TARGETS["ours_vs_naive"], True, {s: r["ours_vs_naive"] for s, r in headline.items()}),
        "peak_rss_vs_payload": (
            TARGETS["peak_rss_vs_payload"],
            False,
            {s: r["handler_peak_bytes"] / r["payload_bytes"] for s, r in memory_rows.items()},
        ),
        "cold_start_ms": (TARGETS["cold_start_ms"], False, {0: cold}),
        "lambda_compute_usd_per_tb": (
            TARGETS["lambda_compute_usd_per_tb"],
            False,
            {s: r["usd_per_tb"]["compute"] for s, r in cost_rows.items()},
        ),
    }
    targets = {}
    for name, (target, higher_is_better, values) in measured.items():
        met = {size: (value >= target if higher_is_better else value <= target) for size, value in values.items()}
        targets[name] = {
            "target": target,
            "higher_is_better": higher_is_better,
            "by_value_size": {str(size): round(value, 3) for size, value in values.items()},
            "met_by_value_size": {str(size): ok for size, ok in met.items()},
            "met": all(met.values()),
        }
    return targets


def print_report(results: dict[str, Any]) -> None:
    print()
    print(
        f"Throughput: full batches, best of {results['rounds']} interleaved rounds, CPU time; "
        "MB/s of decoded payload; ratios = other's time / this row's time"
    )
    print(
        f"{'value':>6} {'codec':<9} {'records':>7} {'variant':<13} {'ms':>7} {'rec/s':>8} {'MB/s':>6} "
        f"{'vs raw':>6} {'vs naive':>8} {'out/payload':>11}"
    )
    by_key = {(r["value_size"], r["codec"], r["variant"]): r for r in results["throughput"]}
    for row in results["throughput"]:
        raw = by_key[(row["value_size"], row["codec"], "raw")]["best_s"]
        naive = by_key[(row["value_size"], row["codec"], "naive")]["best_s"]
        stored = f"{row['output_bytes'] / row['payload_bytes']:.3f}" if row["output_bytes"] else "-"
        print(
            f"{row['value_size']:>6} {row['codec']:<9} {row['records']:>7} {row['variant']:<13} "
            f"{row['best_s'] * 1e3:>7.1f} {row['records_per_s']:>8.0f} {row['payload_mb_per_s']:>6.1f} "
            f"{raw / row['best_s']:>6.2f} {naive / row['best_s']:>8.2f} {stored:>11}"
        )
    print()
    print(f"Headline ({DEFAULT_CODEC}, default partitioner):")
    for row in results["summary"]["by_value_size"]:
        print(
            f"  {row['value_size']:>6} B: {row['ours_records_per_s']:,.0f} rec/s, {row['ours_mb_per_s']:.1f} MB/s; "
            f"ours/raw {row['ours_vs_raw']:.2f}x, ours/naive {row['ours_vs_naive']:.2f}x "
            f"(raw/naive {row['raw_vs_naive']:.2f}x, floor/naive {row['floor_vs_naive']:.2f}x), "
            f"gain over before {row['ours_vs_before']:.2f}x"
        )
    print()
    print("Decode only (same records): time relative to our decoder")
    for row in results["decode_claim"]:
        print(
            f"  {row['value_size']:>6} B: KafkaEvent data class {row['kafka_event_vs_ours']:.2f}x; "
            f"ConsumerRecords (kafka_consumer) {row['consumer_records_vs_ours']:.2f}x; "
            f"our checked path (before) {row['ours_checked_best_s'] / row['ours_best_s']:.2f}x; "
            f"KafkaEvent vs checked path {row['kafka_event_vs_ours_checked']:.2f}x"
        )
    print()
    print("Encode only (same records, byte-identical output): fastavro.writer time / specialised writer time")
    for row in results["encoder"]:
        print(f"  {row['value_size']:>6} B {row['codec']:<9}: {row['speedup']:.2f}x")
    print()
    print("Sync interval (1 KB values): stored bytes / payload bytes, encode time")
    for row in results["sync_intervals"]:
        print(
            f"  {row['codec']:<9} {row['sync_interval'] >> 10:>5} KiB: {row['size_vs_payload']:.3f}, "
            f"{row['best_s'] * 1e3:.1f} ms"
        )
    print()
    print("Peak memory per full batch (fresh process each; handler = RSS growth during a first batch):")
    for row in results["memory"]:
        print(
            f"  {row['variant']:<6} {row['value_size']:>6} B: +{row['handler_peak_bytes'] / 1e6:.1f} MB RSS "
            f"= {row['handler_peak_bytes'] / row['payload_bytes']:.2f}x payload "
            f"({row['handler_peak_bytes'] / row['event_bytes']:.2f}x event); Python heap peak "
            f"{row['python_heap_peak_bytes'] / 1e6:.1f} MB; process peak {row['peak_rss_bytes'] / 1e6:.0f} MB"
        )
    print()
    for mode, cold in results["cold_start"].items():
        steps = ", ".join(f"{name} {ms:.0f}" for name, ms in cold["steps_ms"].items())
        print(f"Cold start ({mode}): import + init median {cold['median_ms']:.0f} ms. Steps (ms): {steps}")
    e2e = results.get("end_to_end")
    if e2e:
        print()
        if "skipped" in e2e:
            print(f"End to end: skipped ({e2e['skipped']})")
        else:
            print(f"End to end against LocalStack ({DEFAULT_CODEC}), best wall time:")
            for row in e2e["rows"]:
                print(
                    f"  {row['value_size']:>6} B: {row['localstack_best_wall_s'] * 1e3:.0f} ms, "
                    f"{row['records_per_s']:,.0f} rec/s, {row['payload_mb_per_s']:.1f} MB/s "
                    f"(in memory {row['in_memory_best_wall_s'] * 1e3:.0f} ms)"
                )
    print()
    cost.print_model(results["cost"])
    print()
    print("Targets (per value size):")
    for name, target in results["targets"].items():
        values = ", ".join(
            f"{size if size != '0' else 'all'}: {value:g} {'ok' if target['met_by_value_size'][size] else 'MISSED'}"
            for size, value in target["by_value_size"].items()
        )
        sign = ">=" if target["higher_is_better"] else "<="
        print(f"  {name:<26} {sign} {target['target']:<6} {values}  -> {'MET' if target['met'] else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and cases")
    parser.add_argument("--e2e", action="store_true", help="also run end to end against the local stack")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per case (default 9, quick 3)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    codecs = (DEFAULT_CODEC, "null") if args.quick else CODECS
    started = time.perf_counter()

    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rounds": rounds,
        "default_codec": DEFAULT_CODEC,
    }
    print(f"Throughput ({rounds} rounds per case) ...")
    results["throughput"] = throughput(VALUE_SIZES, codecs, rounds)
    deterministic_check(data.full_batch(1_000))
    results["summary"] = summarise(results)
    results["codecs"] = codec_table(results)
    print("Decode only, encode only, sync intervals ...")
    results["decode_claim"] = decode_claim(rounds)
    results["encoder"] = encoder_comparison(rounds)
    results["sync_intervals"] = sync_intervals(max(3, rounds // 2))
    print("Memory (a fresh process per measurement) ...")
    results["memory"] = [
        memory.run_child(variant, size, DEFAULT_CODEC)
        for size in VALUE_SIZES
        for variant in (("ours",) if args.quick else ("ours", "raw", "naive"))
    ]
    print("Cold start ...")
    results["cold_start"] = coldstart.measure(samples=3 if args.quick else 7)
    if args.e2e:
        from bench import e2e

        print("End to end against LocalStack ...")
        results["end_to_end"] = e2e.measure(rounds=max(3, rounds // 2))
    results["cost"] = cost.model(results)
    results["targets"] = evaluate_targets(results)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    print_report(results)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nwrote {shown} in {results['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
