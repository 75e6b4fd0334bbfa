"""``HostProcessRuntimeExecutor``: LocalStack's ``RuntimeExecutor`` API, backed by a host process.

One execution environment = one process running ``bootstrap.py`` with the function's unzipped code first on
``sys.path`` and the environment LocalStack computed for it (credentials, ``AWS_ENDPOINT_URL``, the function's own
variables, ...). Invocations go over a pipe pair, one JSON line each way; the function's stdout and stderr are
collected per invocation and handed back as the invocation's logs (so ``LogType=Tail`` and CloudWatch Logs work).

Configuration (environment of the LocalStack process):

* ``ARCHIVER_LAMBDA_PYTHON`` -- the interpreter that plays the Lambda runtime (default: LocalStack's own). It should
  be the runtime's Python version with boto3 installed, as AWS's managed runtime has.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from localstack.services.lambda_.invocation.lambda_models import (  # type: ignore[import-not-found, unused-ignore]
    FunctionVersion,
    InvocationResult,
)
from localstack.services.lambda_.invocation.runtime_executor import (  # type: ignore[import-not-found, unused-ignore]
    LambdaRuntimeException,
    RuntimeExecutor,
)

from .bootstrap import END_MARKER  # the runtime side prints it; one definition for both ends of the pipe

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
STARTUP_TIMEOUT_S = 60.0
MAX_LOG_CHARS = 1_000_000


def _python() -> str:
    return os.environ.get("ARCHIVER_LAMBDA_PYTHON") or sys.executable


class HostProcessRuntimeExecutor(RuntimeExecutor):  # type: ignore[misc, unused-ignore]
    """Runs a Python Lambda function in a host subprocess. Only ``python3.*`` runtimes with zip code are supported."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self._process: subprocess.Popen[bytes] | None = None
        self._control_in: IO[str] | None = None
        self._control_out: IO[str] | None = None
        self._env: dict[str, str] = {}
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._all_logs: list[str] = []
        self._current: list[str] = []
        self._ended: dict[str, threading.Event] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        runtime = str(function_version.config.runtime or "")
        if not runtime.startswith("python"):
            raise LambdaRuntimeException(
                f"the 'local' executor runs only python runtimes (zip packages), not {runtime or 'container images'}"
            )
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to clean: LocalStack owns the unzipped code directory."""

    @classmethod
    def validate_environment(cls) -> bool:
        return Path(_python()).exists()

    def start(self, env_vars: dict[str, str]) -> None:
        code_dir = str(self.function_version.config.code.get_unzipped_code_location())
        env = {key: str(value) for key, value in env_vars.items()}
        env.update(
            {
                "LAMBDA_TASK_ROOT": code_dir,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", code_dir),
                "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": code_dir,
            }
        )
        env.pop("LOCALSTACK_USER", None)
        self._env = env
        self._spawn()

    def _spawn(self) -> None:
        control_in_r, control_in_w = os.pipe()
        control_out_r, control_out_w = os.pipe()
        process = subprocess.Popen(  # noqa: S603 - the configured runtime interpreter and our bootstrap
            [_python(), "-u", str(BOOTSTRAP), str(control_in_r), str(control_out_w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._env,
            cwd=self._env["LAMBDA_TASK_ROOT"],
            pass_fds=(control_in_r, control_out_w),
        )
        os.close(control_in_r)
        os.close(control_out_w)
        self._process = process
        self._control_in = os.fdopen(control_in_w, "w", buffering=1, encoding="utf-8")
        self._control_out = os.fdopen(control_out_r, "r", encoding="utf-8")
        threading.Thread(target=self._pump_logs, args=(process,), name=f"lambda-logs-{self.id}", daemon=True).start()
        ready = self._read_message(STARTUP_TIMEOUT_S)
        if ready is None or ready.get("type") != "ready":
            self._kill()
            raise LambdaRuntimeException(f"function process did not start: {ready}; logs:\n{self.get_logs()}")

    def stop(self) -> None:
        self._kill()

    def _kill(self) -> None:
        process, self._process = self._process, None
        for stream in (self._control_in, self._control_out):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._control_in = self._control_out = None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    # -- addresses ----------------------------------------------------------------------------------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        # The process runs on the same host as LocalStack.
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        from localstack import config  # type: ignore[import-not-found, unused-ignore]

        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    # -- invocations --------------------------------------------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self._env.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3)
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._spawn()  # the previous process timed out or crashed: a fresh (cold) environment
            ended = threading.Event()
            with self._log_lock:
                self._current = []
                self._ended = {request_id: ended}
            message = {
                "type": "invoke",
                "id": request_id,
                "arn": payload.get("invoked-function-arn", ""),
                "payload": payload.get("payload", ""),
                "trace_id": payload.get("trace-id", ""),
                "deadline_ms": int((time.time() + timeout) * 1000),
            }
            assert self._control_in is not None
            try:
                self._control_in.write(json.dumps(message) + "\n")
                self._control_in.flush()
            except OSError:
                return self._error(request_id, "Runtime.ExitError", "Runtime exited before the invocation")
            reply = self._read_message(timeout + 1.0)
            if reply is None:
                exited = self._process is not None and self._process.poll() is not None
                code = self._process.returncode if self._process is not None else None
                self._kill()
                if exited:
                    return self._error(
                        request_id, "Runtime.ExitError", f"Runtime exited with error: exit status {code}"
                    )
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                return self._error(
                    request_id, "Sandbox.Timedout", f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
                )
            ended.wait(2.0)  # the function's last log lines may still be in the pipe
            with self._log_lock:
                logs = "".join(self._current)
            body = str(reply.get("payload", "")).encode()
            return InvocationResult(request_id, body, is_error=not reply.get("ok", False), logs=logs)

    def _error(self, request_id: str, error_type: str, message: str) -> Any:
        with self._log_lock:
            logs = "".join(self._current)
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        return InvocationResult(request_id, body, is_error=True, logs=logs)

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        """One JSON line from the process, or None on timeout or end of stream."""
        stream = self._control_out
        if stream is None:
            return None
        result: list[str] = []

        def read() -> None:
            with contextlib.suppress(OSError, ValueError):  # the stream is closed when the process is killed
                result.append(stream.readline())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            return None
        value = json.loads(result[0])
        return value if isinstance(value, dict) else None

    def _pump_logs(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            with self._log_lock:
                if line.startswith(END_MARKER):
                    event = self._ended.get(line[len(END_MARKER) :].strip())
                    if event is not None:
                        event.set()
                    continue
                self._current.append(line)
                self._all_logs.append(line)
                if len(self._all_logs) > 10_000:
                    del self._all_logs[:5_000]

    def get_logs(self) -> str:
        with self._log_lock:
            return "".join(self._all_logs)[-MAX_LOG_CHARS:]
