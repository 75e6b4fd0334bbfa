"""Archive operations: compaction of small objects (``tools.compact``) and replay into Kafka (``tools.replay``).

The tools reuse the Lambda's own code (key scheme, encoder, sync markers), which lives in ``functions/archiver``
rather than in an installed package. Appending that directory to ``sys.path`` lets ``python -m tools.compact`` run
from the repository root, and ``local.verify`` import ``tools.archive_index``, without a PYTHONPATH.
"""

import sys
from pathlib import Path

_CORE = Path(__file__).resolve().parents[1] / "functions" / "archiver"
if _CORE.is_dir() and str(_CORE) not in sys.path:
    sys.path.append(str(_CORE))  # appended: an archiver already on the path (pytest's pythonpath) wins
