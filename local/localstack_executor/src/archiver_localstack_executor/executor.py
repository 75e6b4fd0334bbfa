"""``HostProcessRuntimeExecutor``: LocalStack's ``RuntimeExecutor`` API, backed by a host process.

One execution environment = one process running ``bootstrap.py`` with the function's unzipped code first on
``sys.path`` and the environment LocalStack computed for it (credentials, ``AWS_ENDPOINT_URL``, the function's own
variables, ...). Invocations go over a pipe pair, one JSON line each way; the function's stdout and stderr are
collected per invocation and handed back as the invocation's logs (so ``LogType=Tail`` and CloudWatch Logs work).

The function timeout is enforced as Lambda does: the clock starts before the event is written to the process (an
event larger than a pipe buffer, 64 KiB, cannot block it), and when it runs out the process is killed first (SIGKILL)
and its pipes are closed after. The invocation then fails with ``Sandbox.Timedout`` at the timeout, whether the
function was busy, waiting on a hung call or frozen, and the next invocation starts a fresh process (a cold start).

Configuration (environment of the LocalStack process):

* ``ARCHIVER_LAMBDA_PYTHON`` -- the interpreter that plays the Lambda runtime (default: LocalStack's own). It should
  be the runtime's Python version with boto3 installed, as AWS's managed runtime has.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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
STOP_GRACE_S = 2.0  # stop(): SIGTERM, then SIGKILL after this long
MAX_LOG_CHARS = 1_000_000


def _python() -> str:
    return os.environ.get("ARCHIVER_LAMBDA_PYTHON") or sys.executable


class Channel:
    """One JSON line each way over a pipe pair, every write and read bounded by a deadline (``time.monotonic()``).

    Both ends are non-blocking and waited on with ``poll``, so no thread is ever stuck in a read or a write: a
    frozen or hung process costs the caller its deadline, not more.
    """

    CLOSED = "closed"
    TIMEOUT = "timeout"

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self._write_fd, self._read_fd = write_fd, read_fd
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        self._buffer = b""

    def send(self, message: dict[str, Any], deadline: float) -> str | None:
        """Write one line. None when written, else ``TIMEOUT`` or ``CLOSED`` (the process is gone)."""
        data = (json.dumps(message) + "\n").encode()
        while data:
            if not self._ready(self._write_fd, select.POLLOUT, deadline):
                return self.TIMEOUT
            try:
                data = data[os.write(self._write_fd, data) :]
            except BlockingIOError:
                continue
            except OSError:  # EPIPE: the reading end is closed
                return self.CLOSED
        return None

    def receive(self, deadline: float) -> dict[str, Any] | str:
        """The next JSON object, or ``TIMEOUT`` / ``CLOSED`` (end of stream)."""
        while b"\n" not in self._buffer:
            if not self._ready(self._read_fd, select.POLLIN, deadline):
                return self.TIMEOUT
            try:
                chunk = os.read(self._read_fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return self.CLOSED
            if not chunk:
                return self.CLOSED
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        value = json.loads(line)
        return value if isinstance(value, dict) else self.CLOSED

    @staticmethod
    def _ready(fd: int, event: int, deadline: float) -> bool:
        """Wait until ``fd`` is ready for ``event`` (or hung up); False once the deadline has passed."""
        poller = select.poll()
        poller.register(fd, event)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller.poll(remaining * 1000):
                return True

    def close(self) -> None:
        for fd in (self._write_fd, self._read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class HostProcessRuntimeExecutor(RuntimeExecutor):  # type: ignore[misc, unused-ignore]
    """Runs a Python Lambda function in a host subprocess. Only ``python3.*`` runtimes with zip code are supported."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
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
        self._channel = Channel(control_in_w, control_out_r)
        threading.Thread(target=self._pump_logs, args=(process,), name=f"lambda-logs-{self.id}", daemon=True).start()
        ready = self._channel.receive(time.monotonic() + STARTUP_TIMEOUT_S)
        if not isinstance(ready, dict) or ready.get("type") != "ready":
            self._kill(grace_s=0)
            raise LambdaRuntimeException(f"function process did not start: {ready}; logs:\n{self.get_logs()}")

    def stop(self) -> None:
        self._kill(grace_s=STOP_GRACE_S)

    def _kill(self, *, grace_s: float) -> None:
        """End the process, then close its pipes -- in that order, so nothing waits on a process that is still there.

        ``grace_s`` 0 is a timeout's kill (SIGKILL at once, as Lambda does); otherwise SIGTERM first. A stopped
        (SIGSTOP) process receives SIGKILL too.
        """
        process, channel = self._process, self._channel
        self._process = self._channel = None
        if process is not None and process.poll() is None:
            if grace_s > 0:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace_s)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        if channel is not None:
            channel.close()

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
            # The clock starts here, before the event is written: a write that blocks counts against the timeout.
            deadline = time.monotonic() + timeout
            message = {
                "type": "invoke",
                "id": request_id,
                "arn": payload.get("invoked-function-arn", ""),
                "payload": payload.get("payload", ""),
                "trace_id": payload.get("trace-id", ""),
                "deadline_ms": int((time.time() + timeout) * 1000),
            }
            assert self._channel is not None
            reply = self._channel.send(message, deadline) or self._channel.receive(deadline)
            if isinstance(reply, dict):
                ended.wait(2.0)  # the function's last log lines may still be in the pipe
                with self._log_lock:
                    logs = "".join(self._current)
                body = str(reply.get("payload", "")).encode()
                return InvocationResult(request_id, body, is_error=not reply.get("ok", False), logs=logs)
            process = self._process
            self._kill(grace_s=0)
            if reply == Channel.CLOSED:
                code = process.returncode if process is not None else None
                return self._error(request_id, "Runtime.ExitError", f"Runtime exited with error: exit status {code}")
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return self._error(
                request_id, "Sandbox.Timedout", f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
            )

    def _error(self, request_id: str, error_type: str, message: str) -> Any:
        with self._log_lock:
            logs = "".join(self._current)
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        return InvocationResult(request_id, body, is_error=True, logs=logs)

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
        process.stdout.close()

    def get_logs(self) -> str:
        with self._log_lock:
            return "".join(self._all_logs)[-MAX_LOG_CHARS:]
