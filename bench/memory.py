"""Peak resident memory of one full batch, each measurement in a fresh process, the event loaded as Lambda loads it.

The parent writes the batch's event as JSON to a file. Each child builds the variant (as at cold start), reads
the file and ``json.loads`` it as the Lambda runtime does with the invocation payload, collects garbage, resets the
kernel's high-water mark (``/proc/self/clear_refs``), archives the batch and reads ``VmHWM``. The handler's peak is
that high-water mark minus the resident size just before the call: the memory one full batch needs on top of the
event, on the container's first batch. Nothing else ran in that process, so no freed memory of an earlier step can
hide part of the peak (building the batch in the same process did, and understated it: issue 14).

The first batch also pays for what a container builds once and keeps (varint tables, the zstandard context, the
request threads); ``warm`` runs one small batch before loading the event, so that the growth is the batch's own.
The process peak (interpreter, libraries, event, output) is reported too, since the function's memory setting must
hold all of it, and so is the Python heap peak of a second call (``tracemalloc``).

    python -m bench.memory ours /tmp/event.json zstandard [--warm]     # prints one JSON line
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("ours", "powertools_exact", "powertools_lossy")


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"no {field} in /proc/self/status"
    return int(match.group(1))


def measure(variant_name: str, event_path: str, codec: str, *, warm: bool) -> dict[str, Any]:
    from archiver.settings import Codec
    from bench import data, variants

    variant = getattr(variants, variant_name)(cast("Codec", codec))
    if warm:
        variant(data.full_batch(100, max_records=data.PARTITIONS * 2).event)
    raw = Path(event_path).read_bytes()
    event = json.loads(raw)  # what the Lambda runtime does with the invocation payload
    del raw
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    bodies = variant(event)
    peak = _status_kib("VmHWM")
    output = sum(len(body) for body in bodies)
    del bodies
    gc.collect()
    tracemalloc.start()
    variant(event)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "output_bytes": output,
        "rss_before_bytes": before * 1024,
        "peak_rss_bytes": peak * 1024,
        "handler_peak_bytes": (peak - before) * 1024,
        "python_heap_peak_bytes": traced_peak,
    }


def run(value_size: int, codec: str, variant_names: tuple[str, ...] = VARIANTS) -> list[dict[str, Any]]:
    """Every variant, first batch and warm, each in a fresh interpreter, on one full batch of ``value_size``."""
    from bench import data

    batch = data.full_batch(value_size)
    rows = []
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(batch.event, file, separators=(",", ":"))
        file.flush()
        for variant_name in variant_names:
            for warm in (False, True):
                measured = _child(variant_name, file.name, codec, warm=warm)
                rows.append(
                    {
                        "variant": variant_name,
                        "value_size": value_size,
                        "codec": codec,
                        "warm": warm,
                        "records": batch.records,
                        "event_bytes": batch.event_bytes,
                        "payload_bytes": batch.payload_bytes,
                        **measured,
                    }
                )
    return rows


def _child(variant_name: str, event_path: str, codec: str, *, warm: bool) -> dict[str, Any]:
    """Measure in a fresh interpreter so that no other step's heap can hide part of the peak."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'functions' / 'archiver'}{os.pathsep}{ROOT}")
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", variant_name, event_path, codec, *(["--warm"] if warm else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("event")
    parser.add_argument("codec")
    parser.add_argument("--warm", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.variant, args.event, args.codec, warm=args.warm)))
