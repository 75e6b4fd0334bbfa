"""``python -m tests.fuzz [--events 100000] [--seed 1]`` (``make fuzz``): the long fuzz run, with its counts.

Exits 1 if any event had an unhandled exception, an unreadable object, a wrong dead letter or archived record, or
a lost or duplicated record. Needs ``functions/archiver`` and the repository root on ``PYTHONPATH`` (the Makefile
sets both).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from tests.fuzz.events import fuzz_event
from tests.fuzz.harness import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)
    started = time.monotonic()
    with harness() as fuzz:
        for index in range(args.events):
            fuzz.check(fuzz_event(rnd), fuzz.archivers[index % len(fuzz.archivers)])
            if (index + 1) % 10_000 == 0:
                print(
                    f"  {index + 1:,} events, {time.monotonic() - started:.0f} s: {fuzz.counts.summary()}", flush=True
                )
        counts = fuzz.counts
    print(f"fuzz (seed {args.seed}, {time.monotonic() - started:.0f} s): {counts.summary()}")
    if counts.errors:
        print(f"unhandled exceptions by type: {dict(counts.errors)}")
    for example in counts.examples:
        print(f"  {example}")
    return 1 if counts.bad else 0


if __name__ == "__main__":
    sys.exit(main())
