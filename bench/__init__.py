"""Benchmarks of the archiver hot path (``make bench``; see docs/benchmarks.md)."""

import sys
from pathlib import Path

# The function's code is a separate tree (functions/archiver), importable as ``archiver`` in the Lambda runtime.
_FUNCTION_DIR = str(Path(__file__).resolve().parent.parent / "functions" / "archiver")
if _FUNCTION_DIR not in sys.path:
    sys.path.insert(0, _FUNCTION_DIR)
