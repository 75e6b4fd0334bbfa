"""How the emulator calls the function: through LocalStack's Lambda Invoke API (as AWS's poller does), or in-process.

Both return an ``InvokeOutcome``; neither raises for a function error or an unreachable endpoint, so the emulator's
retry policy sees every failure the same way.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from local import config

FUNCTION_DIR = config.ROOT / "functions" / "archiver"


@dataclass(frozen=True)
class InvokeOutcome:
    """What one invocation returned. ``function_error`` is set for a function error (``Unhandled``), ``error`` for a
    failure to invoke at all (endpoint down, throttled, ...)."""

    ok: bool
    payload: bytes = b""
    logs: str = ""
    function_error: str | None = None
    error: str | None = None
    status_code: int = 200

    @property
    def summary(self) -> dict[str, Any]:
        """The function's JSON result when it is an object, else {}."""
        try:
            value = json.loads(self.payload or b"null")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def describe(self) -> str:
        if self.ok:
            return "ok"
        if self.error:
            return f"invoke failed: {self.error}"
        detail = self.summary
        message = detail.get("errorMessage") or self.payload[:300].decode(errors="replace")
        return f"function error ({self.function_error}): {detail.get('errorType', '')} {message}".strip()


class Invoker(Protocol):
    function_arn: str

    def invoke(self, payload: bytes) -> InvokeOutcome: ...


def invoke_client(endpoints: config.Endpoints) -> Any:
    """The Lambda client the poller invokes with: it waits as long as a function may run (15 minutes), and makes
    exactly one attempt per call, because retrying is the emulator's job (counted, backed off, re-batched).

    botocore's ``max_attempts`` counts *retries* (``max_attempts: 1`` = two requests); ``total_max_attempts``
    counts requests, including the first (botocore/args.py, ``_compute_retry_max_attempts``).
    """
    from local.aws import client

    return client("lambda", endpoints, read_timeout=960, connect_timeout=3, retries={"total_max_attempts": 1})


class LambdaInvoker:
    """Synchronous ``Invoke`` (RequestResponse, ``LogType=Tail``) of the function deployed in LocalStack."""

    def __init__(self, function_name: str, lambda_client: Any) -> None:
        self.function_name = function_name
        self._client = lambda_client
        configuration = lambda_client.get_function_configuration(FunctionName=function_name)
        self.function_arn: str = configuration["FunctionArn"]

    def invoke(self, payload: bytes) -> InvokeOutcome:
        try:
            response = self._client.invoke(
                FunctionName=self.function_name, InvocationType="RequestResponse", LogType="Tail", Payload=payload
            )
        except Exception as error:
            return InvokeOutcome(ok=False, error=f"{type(error).__name__}: {error}", status_code=0)
        body = response["Payload"].read()
        logs = base64.b64decode(response.get("LogResult") or "").decode(errors="replace")
        function_error = response.get("FunctionError")
        return InvokeOutcome(
            ok=function_error is None,
            payload=body,
            logs=logs,
            function_error=function_error,
            status_code=int(response.get("StatusCode", 200)),
        )


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy, so EMF lines can be read back after the call."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.captured = io.StringIO()

    def write(self, text: str) -> int:
        self.captured.write(text)
        return int(self._target.write(text))

    def flush(self) -> None:
        self._target.flush()


class InProcessContext:
    """A Lambda context object for in-process calls (``aws_request_id`` is a string, unlike python-lambda-local)."""

    def __init__(self, function_name: str, function_arn: str, timeout_s: float, memory_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]in-process"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessInvoker:
    """Calls ``functions/archiver/handler.py:lambda_handler`` in this process, with the deployed function's environment.

    For fast loops and debugging (breakpoints work). The endpoints stay those of this process (``AWS_ENDPOINT_URL``),
    as the function's own environment inside LocalStack would point at the same LocalStack.
    """

    def __init__(
        self,
        *,
        function_name: str,
        function_arn: str,
        environment: dict[str, str],
        timeout_s: float = 60.0,
        memory_mb: int = 512,
        handler: str = "handler.lambda_handler",
        code_dir: Path = FUNCTION_DIR,
    ) -> None:
        self.function_name = function_name
        self.function_arn = function_arn
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        for name, value in environment.items():
            if not name.startswith("AWS_ENDPOINT_URL"):
                os.environ[name] = value
        os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", function_name)
        if str(code_dir) not in sys.path:
            sys.path.insert(0, str(code_dir))
        module_name, _, attribute = handler.rpartition(".")
        self._handler = getattr(importlib.import_module(module_name), attribute)

    @classmethod
    def from_deployed(cls, function_name: str, lambda_client: Any, **kwargs: Any) -> InProcessInvoker:
        configuration = lambda_client.get_function_configuration(FunctionName=function_name)
        return cls(
            function_name=function_name,
            function_arn=configuration["FunctionArn"],
            environment=dict(configuration.get("Environment", {}).get("Variables", {})),
            timeout_s=float(configuration.get("Timeout", 60)),
            memory_mb=int(configuration.get("MemorySize", 512)),
            handler=configuration.get("Handler", "handler.lambda_handler"),
            **kwargs,
        )

    def invoke(self, payload: bytes) -> InvokeOutcome:
        context = InProcessContext(self.function_name, self.function_arn, self._timeout_s, self._memory_mb)
        tee = _Tee(sys.stdout)
        try:
            with contextlib.redirect_stdout(tee):
                result = self._handler(json.loads(payload), context)
        except Exception as error:
            body = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__}).encode()
            return InvokeOutcome(ok=False, payload=body, logs=tee.captured.getvalue(), function_error="Unhandled")
        return InvokeOutcome(ok=True, payload=json.dumps(result).encode(), logs=tee.captured.getvalue())
