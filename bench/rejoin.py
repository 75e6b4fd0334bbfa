"""How long the emulator takes to get its partitions: first start, restart after SIGTERM, restart after SIGKILL.

A member that leaves its consumer group (SIGTERM: the emulator closes its consumer) is gone at once; one that is
killed stays a member until its session times out, and a new member's join waits for that. This measures the real
emulator (``python -m local.esm``, seconds from process start to its ``assigned`` event) against the local broker,
for several session timeouts. It needs a local stack that is up and deployed (``make local-up`` + deploy, or the
demo with ``KEEP=1``): the emulator looks its function up.

    python -m bench.rejoin [--instance default] [--rounds 3]      # prints a table and one JSON line
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
import uuid
from typing import Any

from local import produce, stack
from local.esm.process import EmulatorProcess

SESSION_TIMEOUTS_MS = (6000, 3000, 2000)


def time_to_assignment(args: list[str], bootstrap: str) -> tuple[float, EmulatorProcess]:
    started = time.monotonic()
    emulator = EmulatorProcess(args, env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    event = emulator.wait_for(lambda e: e.get("event") == "assigned" and bool(e.get("partitions")), 120)
    if event is None:
        emulator.kill()
        raise RuntimeError(f"no assignment within 120 s: {emulator.tail()}")
    return time.monotonic() - started, emulator


def measure(instance: str, rounds: int) -> dict[str, Any]:
    bootstrap = stack.current(instance).endpoints.kafka_bootstrap
    results: dict[str, Any] = {}
    for session_ms in SESSION_TIMEOUTS_MS:
        times: dict[str, list[float]] = {"first start": [], "after SIGTERM": [], "after SIGKILL": []}
        for _ in range(rounds):
            topic = f"bench-rejoin-{uuid.uuid4().hex[:6]}"
            produce.produce_orders(bootstrap, topic, count=10, partitions=2, tombstones=0, poison=0)
            args = ["--instance", instance, "--topics", topic, "--group-id", f"{topic}-group",
                    "--session-timeout-ms", str(session_ms), "--no-metrics"]  # fmt: skip
            seconds, emulator = time_to_assignment(args, bootstrap)
            times["first start"].append(seconds)
            emulator.signal(signal.SIGTERM)
            emulator.wait(60)
            seconds, emulator = time_to_assignment(args, bootstrap)
            times["after SIGTERM"].append(seconds)
            emulator.kill()
            seconds, emulator = time_to_assignment(args, bootstrap)
            times["after SIGKILL"].append(seconds)
            emulator.signal(signal.SIGTERM)
            emulator.wait(60)
        row = {case: round(statistics.median(values), 2) for case, values in times.items()}
        print(f"session {session_ms} ms: " + ", ".join(f"{k} {v} s" for k, v in row.items()), file=sys.stderr)
        results[str(session_ms)] = {"median_s": row, "all_s": {k: [round(v, 2) for v in vs] for k, vs in times.items()}}
    return {"instance": instance, "rounds": rounds, "session_timeout_ms": results}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rejoin", description=__doc__.split("\n\n")[0])
    p.add_argument("--instance", default=None, help="a local stack that is up and deployed (default: $LOCAL_INSTANCE)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    print(json.dumps(measure(args.instance or stack.default_instance(), args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
