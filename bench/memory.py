"""Peak resident memory of one full batch, measured in a fresh process per variant.

The child builds the event as the Lambda runtime would hand it over (a parsed JSON dict) and the variant as at
cold start, resets the kernel's high-water mark (``/proc/self/clear_refs``), archives the batch and reads
``VmHWM``. The handler's peak is that high-water mark minus the resident size just before the call: the memory one
full batch needs on top of the event, measured on a container's first batch (later batches reuse the freed heap,
so their RSS barely moves). The process peak (interpreter, libraries, event, output) is reported too, since the
function's memory setting must hold all of it, and so is the Python heap peak of a second, warm call
(``tracemalloc``), which does not depend on what the allocator kept from the first.

    python -m bench.memory ours 1000 zstandard     # prints one JSON line
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, f"no {field} in /proc/self/status"
    return int(match.group(1))


def measure(variant_name: str, value_size: int, codec: str) -> dict[str, Any]:
    from archiver.settings import Codec
    from bench import data, variants

    batch = data.full_batch(value_size)
    codec_ = cast("Codec", codec)
    variant = {"ours": variants.ours, "raw": variants.raw, "naive": variants.naive}[variant_name](codec_)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    bodies = variant(batch.event)
    peak = _status_kib("VmHWM")
    output = sum(len(body) for body in bodies)
    del bodies
    gc.collect()
    tracemalloc.start()
    variant(batch.event)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "variant": variant_name,
        "value_size": value_size,
        "codec": codec,
        "records": batch.records,
        "event_bytes": batch.event_bytes,
        "payload_bytes": batch.payload_bytes,
        "output_bytes": output,
        "rss_before_bytes": before * 1024,
        "peak_rss_bytes": peak * 1024,
        "handler_peak_bytes": (peak - before) * 1024,
        "python_heap_peak_bytes": traced_peak,
    }


def run_child(variant_name: str, value_size: int, codec: str) -> dict[str, Any]:
    """Measure in a fresh interpreter so one variant's heap cannot hide another's peak."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'functions' / 'archiver'}{os.pathsep}{ROOT}")
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", variant_name, str(value_size), codec],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
