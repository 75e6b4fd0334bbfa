"""The plux plugin LocalStack discovers. Importing LocalStack's executor API happens only in ``load``."""

from __future__ import annotations

from typing import Any

from plux import Plugin  # type: ignore[import-not-found, unused-ignore]


class HostProcessExecutorPlugin(Plugin):  # type: ignore[misc, unused-ignore]
    """Registers the ``local`` runtime executor (``LAMBDA_RUNTIME_EXECUTOR=local``)."""

    namespace = "localstack.lambda.runtime_executor"
    name = "local"

    def load(self, *args: Any, **kwargs: Any) -> Any:
        from .executor import HostProcessRuntimeExecutor

        return HostProcessRuntimeExecutor
