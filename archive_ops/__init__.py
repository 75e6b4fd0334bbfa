"""The archive operations engine: audit, compaction, replay, backfill and cat, shared by the ``kafka-s3-archiver``
command (``archive_ops.cli``) and the deployed maintenance functions (``functions/maintenance``).

The engine reuses the Lambda's own code (key scheme, encoder, sync markers, the pipeline itself for backfill), which
lives in ``functions/archiver``. ``make venv`` installs the project so ``archiver`` is importable; appending that
directory to ``sys.path`` as well keeps ``python -m archive_ops...`` working from a checkout without the install.
"""

import sys
from pathlib import Path

_CORE = Path(__file__).resolve().parents[1] / "functions" / "archiver"
if _CORE.is_dir() and str(_CORE) not in sys.path:
    sys.path.append(str(_CORE))  # appended: an archiver already on the path (pytest's pythonpath) wins
