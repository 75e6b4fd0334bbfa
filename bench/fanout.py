"""Fan-out: one batch spread over 1, 10, 100 or 500 partitions, against a stub S3 that answers each PUT after 25 ms.

The batch is the full batch of 1 KB values (bench/data.py) with its records dealt round-robin to N partitions, so
the default partitioner writes N objects. Each case times, in the same interleaved rounds (wall time: waiting is the
point), the archiver against the stub and against a stub that answers at once. The *ideal* is the latter plus one
PUT's latency: every PUT in flight at once and each hidden behind the encoding of the next, so only the last one's
latency shows. The archiver is built as the handler builds it (``handler.PARALLEL_REQUESTS`` for the stack's default
1,024 MiB).

``before`` runs the same measurement, in a child process, on the function code as it was before issue 14 (commit
``BEFORE_COMMIT``, taken from git): at most 8 PUTs in flight, started only once every object was encoded.

    python -m bench.fanout           # prints one JSON line
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

from bench import data
from bench.timing import interleaved

ROOT = Path(__file__).resolve().parent.parent
PUT_LATENCY_S = 0.025
PARTITION_COUNTS = (1, 10, 100, 500)
VALUE_SIZE = 1_000
BEFORE_COMMIT = "899725c"  # main when issue 14 started
TARGET_VS_IDEAL = 1.5  # issue 14: 500 partitions within 1.5x of ideal


class StubS3:
    """An S3 client whose PutObject answers after ``latency`` seconds (sleeping, as a thread waiting on a socket
    does); it keeps the bodies and the most PUTs it had in flight at once."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.objects: dict[str, bytes] = {}
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.latency)
        with self._lock:
            self.in_flight -= 1
            self.objects[Key] = Body
        return {}


class StubSqs:
    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def _archiver(s3: StubS3) -> Any:
    from archiver.pipeline import Archiver
    from archiver.settings import DEFAULT_CODEC, Settings

    settings = Settings(archive_bucket="bench", dead_letter_queue_url="https://sqs/bench", codec=DEFAULT_CODEC)
    if "parallel" not in inspect.signature(Archiver).parameters:  # the code before issue 14: no request pool
        return Archiver(settings, s3_client=s3, sqs_client=StubSqs())
    from archiver.parallel import parallel_requests

    return Archiver(settings, s3_client=s3, sqs_client=StubSqs(), parallel=parallel_requests())


def _archive(archiver: Any, s3: StubS3, event: dict[str, Any]) -> object:
    s3.objects.clear()
    return archiver.archive(event)


def measure(rounds: int, counts: tuple[int, ...] = PARTITION_COUNTS) -> list[dict[str, Any]]:
    """One row per partition count: wall times against the stub and the instant stub, and the ideal."""
    rows = []
    for partitions in counts:
        batch = data.full_batch(VALUE_SIZE, partitions=partitions)
        slow, instant = StubS3(PUT_LATENCY_S), StubS3(0.0)
        archivers = {"stub": (_archiver(slow), slow), "instant": (_archiver(instant), instant)}

        timings = interleaved(
            {name: partial(_archive, archiver, s3, batch.event) for name, (archiver, s3) in archivers.items()},
            rounds=rounds,
        )
        assert slow.objects.keys() == instant.objects.keys(), "the two stubs hold different objects"
        assert len(slow.objects) == partitions, "one object per partition expected"
        ideal = timings["instant"].median_wall + PUT_LATENCY_S
        rows.append(
            {
                "partitions": partitions,
                "objects": len(slow.objects),
                "records": batch.records,
                "wall_s": timings["stub"].median_wall,
                "best_wall_s": timings["stub"].best_wall,
                "cpu_s": timings["stub"].median,
                "instant_wall_s": timings["instant"].median_wall,
                "ideal_s": ideal,
                "vs_ideal": timings["stub"].median_wall / ideal,
                "most_in_flight": slow.most_in_flight,
            }
        )
    return rows


def measure_before(rounds: int) -> dict[str, Any]:
    """``measure`` on the function code of ``BEFORE_COMMIT``, in a child process; skipped if git cannot show it."""
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", BEFORE_COMMIT, "functions/archiver"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return {"skipped": f"git cannot show {BEFORE_COMMIT}: {error}"}
    with tempfile.TemporaryDirectory() as directory:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        env = dict(os.environ, BENCH_FUNCTION_DIR=str(Path(directory) / "functions" / "archiver"))
        result = subprocess.run(
            [sys.executable, "-m", "bench.fanout", "--rounds", str(rounds)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return {"commit": BEFORE_COMMIT, "rows": json.loads(result.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
