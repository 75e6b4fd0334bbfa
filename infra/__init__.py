"""CDK constructs and the one stack that deploys the archiver.

The function's own ``archiver`` package lives in ``functions/archiver`` (the Lambda asset's root). Infra builds the
function's environment with that package's ``Settings`` type, so the asset root goes on ``sys.path`` here, once,
for every entry point (``app.py``, tests, tools) that imports ``infra``.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = PROJECT_ROOT / "functions" / "archiver"

if str(FUNCTION_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTION_DIR))
