"""Cold start: the time to import ``handler`` (all libraries, settings, boto3 clients), in fresh processes, next to
a bare Powertools handler (bench/bare_handler.py) measured in the same run.

Lambda's init phase runs exactly this import. Each sample is a new interpreter with bytecode caches warm (the
Lambda bundle ships its dependencies' ``.pyc`` files as pip installed them). The handler (tracing off, the default;
and on) and the bare handler are sampled in turns, so that a busy neighbour slows all three alike; the medians of
wall and CPU time (user + system) are reported, and each step of the handler's init is timed on its own to show
where the time goes. On this shared 2-core machine CPU time is the steadier of the two.

    python -m bench.coldstart          # prints one JSON line
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "functions" / "archiver"
BENCH_DIR = ROOT / "bench"
_PROBE = (
    "import time; wall, cpu = time.perf_counter(), time.process_time(); import {module}; "
    "print((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)"
)


def lambda_env(*, tracing: bool) -> dict[str, str]:
    """The environment infra gives the function (see infra/function.py), with fake credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(FUNCTION_DIR),
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",  # Lambda sets both; botocore reads this one
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_LAMBDA_FUNCTION_NAME="kafka-s3-archiver-bench",
        POWERTOOLS_SERVICE_NAME="kafka-s3-archiver",
        ARCHIVE_BUCKET="bench-archive",
        DEAD_LETTER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq",
    )
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _sample(env: dict[str, str], module: str = "handler", directory: Path = FUNCTION_DIR) -> tuple[float, float]:
    """(wall ms, CPU ms) of one fresh import of ``module`` from ``directory``."""
    env = dict(env, PYTHONPATH=str(directory))
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


# The steps of handler.py's module body, timed one by one in a fresh process.
_BREAKDOWN = """
import json, time
steps = {}
def step(name, started):
    steps[name] = round((time.process_time() - started) * 1000, 1)
    return time.process_time()
t = time.process_time()
import boto3, botocore.config
t = step("import boto3", t)
import os
from aws_lambda_powertools import Logger, Metrics
t = step("import powertools", t)
import archiver.pipeline, archiver.settings
t = step("import archiver (fastavro, schema)", t)
Logger(service="x"); Metrics(namespace="n", service="x")
t = step("Logger() + Metrics()", t)
if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true"):  # as handler.traced() decides
    from aws_lambda_powertools import Tracer
    Tracer()
    t = step("Tracer() (imports aws_xray_sdk; tracing on only)", t)
boto3.client("s3")
t = step("boto3.client('s3')", t)
boto3.client("sqs")
t = step("boto3.client('sqs')", t)
print(json.dumps(steps))
"""


def breakdown(env: dict[str, str], samples: int = 3) -> dict[str, float]:
    """Median milliseconds of each init step, in handler.py's order."""
    runs: list[dict[str, float]] = []
    for _ in range(samples):
        result = subprocess.run(
            [sys.executable, "-c", _BREAKDOWN], cwd=FUNCTION_DIR, env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {name: round(statistics.median(run[name] for run in runs), 1) for name in runs[0]}


# The three imports sampled in turns: (environment, module, directory).
MODES = {
    "default": (False, "handler", FUNCTION_DIR),
    "tracing": (True, "handler", FUNCTION_DIR),
    "bare_powertools": (False, "bare_handler", BENCH_DIR),
}


def measure(samples: int = 9) -> dict[str, Any]:
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for tracing, module, directory in MODES.values():
        _sample(lambda_env(tracing=tracing), module, directory)  # writes any missing .pyc files, as a bundle would
    order = list(MODES)
    shuffle = random.Random(1)
    for _ in range(samples):
        shuffle.shuffle(order)
        for mode in order:
            tracing, module, directory = MODES[mode]
            times[mode].append(_sample(lambda_env(tracing=tracing), module, directory))
    results: dict[str, Any] = {}
    for mode, sampled in times.items():
        cpu = [sample[1] for sample in sampled]
        wall = [sample[0] for sample in sampled]
        results[mode] = {
            "median_ms": round(statistics.median(cpu), 1),
            "best_ms": round(min(cpu), 1),
            "median_wall_ms": round(statistics.median(wall), 1),
            "best_wall_ms": round(min(wall), 1),
            "samples": len(sampled),
        }
    for mode in ("default", "tracing"):
        results[mode]["steps_ms"] = breakdown(lambda_env(tracing=MODES[mode][0]))
    bare = results["bare_powertools"]
    results["archiver_share"] = {
        "cpu_ms": round(results["default"]["median_ms"] - bare["median_ms"], 1),
        "wall_ms": round(results["default"]["median_wall_ms"] - bare["median_wall_ms"], 1),
        "cpu_vs_bare": round(results["default"]["median_ms"] / bare["median_ms"], 3),
        "wall_vs_bare": round(results["default"]["median_wall_ms"] / bare["median_wall_ms"], 3),
    }
    return results


if __name__ == "__main__":
    print(json.dumps(measure()))
