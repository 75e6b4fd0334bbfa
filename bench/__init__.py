"""Benchmarks of the archiver hot path (``make bench``; see docs/benchmarks.md)."""

import os
import sys
from pathlib import Path

# The function's code is a separate tree (functions/archiver), importable as ``archiver`` in the Lambda runtime.
# BENCH_FUNCTION_DIR puts another tree first (bench/fanout.py measures the code before issue 14 that way).
_FUNCTION_DIR = os.environ.get("BENCH_FUNCTION_DIR") or str(
    Path(__file__).resolve().parent.parent / "functions" / "archiver"
)
if _FUNCTION_DIR not in sys.path:
    sys.path.insert(0, _FUNCTION_DIR)
