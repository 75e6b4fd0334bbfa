"""Interleaved timing for a noisy machine: every variant runs once per round, in a shuffled order, for N rounds.

Ratios are taken from the same rounds in the same process, so a noisy neighbour slows all variants alike. The best
round estimates what the code costs; the median says how stable that is.

Each round records both the process CPU time and the wall time. On a shared machine (this one runs other jobs on
its 2 cores) wall time includes time spent waiting for a core, so the benchmark's figures use CPU time: the code is
single-threaded and CPU-bound, so on a dedicated core the two agree (the wall figures are kept in results.json).
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    best: float  # CPU seconds
    median: float
    best_wall: float  # wall seconds
    median_wall: float
    rounds: int


def interleaved(
    runs: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int = 1, seed: int = 1
) -> dict[str, Timing]:
    """Time each callable ``rounds`` times, interleaved; returns best and median seconds per name."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    walls: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    shuffle = random.Random(seed)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            runs[name]()
            samples[name].append(time.process_time() - started_cpu)
            walls[name].append(time.perf_counter() - started)
    return {
        name: Timing(
            best=min(values),
            median=statistics.median(values),
            best_wall=min(walls[name]),
            median_wall=statistics.median(walls[name]),
            rounds=len(values),
        )
        for name, values in samples.items()
    }
