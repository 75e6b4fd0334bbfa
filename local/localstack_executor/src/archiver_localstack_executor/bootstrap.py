"""The runtime side of the host executor: what AWS's Python runtime interface client does, over two pipes.

Run as ``python bootstrap.py <control-in fd> <control-out fd>`` by ``executor.py``, with the function's code directory
as the working directory and first on ``sys.path``. It imports the handler named by ``_HANDLER`` once (the cold
start), then answers one invocation per JSON line. Standard library only: it runs in the function's interpreter.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

END_MARKER = "\x1e__archiver_executor_end__ "


class LambdaContext:
    """The attributes and method of the context object AWS's Python runtime passes to a handler."""

    def __init__(self, request_id: str, invoked_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 128)
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error_body(error: BaseException, error_type: str | None = None) -> str:
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": error_type or type(error).__name__,
            "requestId": "",
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
    )


def _load_handler() -> Callable[[Any, LambdaContext], Any]:
    spec = os.environ.get("_HANDLER", "")
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name.replace("/", "."))
    handler = getattr(module, function_name, None)
    if handler is None:
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def main() -> int:
    control_in = os.fdopen(int(sys.argv[1]), "r", encoding="utf-8")
    control_out = os.fdopen(int(sys.argv[2]), "w", buffering=1, encoding="utf-8")
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))

    init_error: str | None = None
    handler: Callable[[Any, LambdaContext], Any] | None = None
    try:
        handler = _load_handler()
    except Exception as error:
        kind = "Runtime.ImportModuleError" if isinstance(error, ImportError) else "Runtime.HandlerNotFound"
        init_error = _error_body(error, kind)
        traceback.print_exc()
    control_out.write(json.dumps({"type": "ready"}) + "\n")

    for line in control_in:
        message = json.loads(line)
        request_id = message["id"]
        os.environ["_X_AMZN_TRACE_ID"] = message.get("trace_id", "")
        ok = False
        if handler is None:
            body = init_error or "{}"
        else:
            try:
                context = LambdaContext(request_id, message.get("arn", ""), int(message["deadline_ms"]))
                event = json.loads(message["payload"]) if message.get("payload") else {}
                body = json.dumps(handler(event, context))
                ok = True
            except Exception as error:
                body = _error_body(error)
                print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr)
                traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"{END_MARKER}{request_id}", flush=True)
        control_out.write(json.dumps({"type": "result", "id": request_id, "ok": ok, "payload": body}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
