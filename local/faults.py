"""A fault-injecting HTTP proxy in front of LocalStack, for the end-to-end fault tests.

LocalStack's free edition has no fault injection, so the tests point the *deployed* function's S3 or SQS endpoint
(``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_SQS`` in its environment) at this proxy, which forwards to LocalStack
and, on demand:

* drops connections without an answer (S3 taken away: every request fails at the network level), all of them or
  only matching requests;
* answers matching requests with an error (``503 SlowDown`` for S3 throttling, an SQS error for DLQ failures,
  ``429 TooManyRequestsException`` for a throttled Lambda Invoke), either always, a number of times, or once per
  distinct path (each object's first PUT is throttled);
* holds matching requests for a while before answering or forwarding them (a slow or hung dependency).

Everything stays on 127.0.0.1 and the proxy stops with ``stop()``. ``function_processes`` finds the host processes
that run a function inside a LocalStack started by ``local.stack``, so a test can freeze one (SIGSTOP).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
S3_SLOW_DOWN = (
    503,
    "application/xml",
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>",
)
# A non-retryable SQS error (JSON protocol), so the function fails at once instead of riding it out with SDK retries.
SQS_QUEUE_MISSING = (
    400,
    "application/x-amz-json-1.0",
    b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist",'
    b'"message":"The specified queue does not exist (fault injection)."}',
)
# What Lambda answers a throttled Invoke (REST-JSON; botocore reads the error code from "__type").
LAMBDA_THROTTLED = (
    429,
    "application/json",
    b'{"__type":"TooManyRequestsException","Type":"User","message":"Rate Exceeded. (fault injection)",'
    b'"Reason":"ReservedFunctionConcurrentInvocationLimit"}',
)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Rule:
    """What to do with requests matching ``match``: answer with ``response`` (status, content type, body), drop the
    connection (``drop``), or forward them (``response`` None) -- in each case after holding them ``delay_s``."""

    match: Callable[[Request], bool]
    response: tuple[int, str, bytes] | None = None
    times: int | None = None  # None: every match; n: the first n matches
    once_per_path: bool = False  # only the first match of each path (e.g. each object's first PUT)
    delay_s: float = 0.0  # hold the request this long first (a slow or, when long, hung dependency)
    drop: bool = False  # close the connection without an answer
    served: int = 0
    _paths: set[str] = field(default_factory=set)

    def applies(self, request: Request) -> bool:
        if not self.match(request):
            return False
        if self.times is not None and self.served >= self.times:
            return False
        if self.once_per_path:
            if request.path in self._paths:
                return False
            self._paths.add(request.path)
        self.served += 1
        return True


def s3_put(request: Request) -> bool:
    """An S3 PutObject (PUT of an object key, not a bucket or a multipart part listing)."""
    return request.method == "PUT" and request.path.count("/") >= 2


def sqs_send(request: Request) -> bool:
    target = request.headers.get("x-amz-target", "")
    return target in {"AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch"}


def s3_request(request: Request) -> bool:
    """Any S3 request (path-style, as LocalStack is addressed here): everything that is not an SQS JSON call."""
    return not request.headers.get("x-amz-target", "").startswith("AmazonSQS.")


def lambda_invoke(request: Request) -> bool:
    """A Lambda Invoke (``POST /2015-03-31/functions/<name>/invocations``)."""
    return request.method == "POST" and request.path.endswith("/invocations")


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.rules: list[Rule] = []
        self.dropping = False
        self.forwarded = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def handle(self) -> None:
                # The client may be gone before its answer (a killed emulator, a function past its timeout).
                with contextlib.suppress(ConnectionError):
                    super().handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command, self.path.split("?", 1)[0], {k.lower(): v for k, v in self.headers.items()}
                )
                with proxy._lock:
                    dropping = proxy.dropping
                    rule = None if dropping else next((r for r in proxy.rules if r.applies(request)), None)
                if rule is not None and rule.delay_s:
                    time.sleep(rule.delay_s)
                if dropping or (rule is not None and rule.drop):
                    with proxy._lock:
                        proxy.dropped += 1
                    self.close_connection = True
                    return  # no answer at all: the client sees the connection closed
                if rule is not None and rule.response is not None:
                    status, content_type, payload = rule.response
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                # As long as a Lambda Invoke may take (15 minutes): the proxy must not be the one that gives up.
                connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=960)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                except OSError:
                    self.close_connection = True  # upstream unreachable: the client sees its connection closed
                    return
                finally:
                    connection.close()
                with proxy._lock:
                    proxy.forwarded += 1
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self.url

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.dropping = False

    def drop_connections(self, dropping: bool = True) -> None:
        with self._lock:
            self.dropping = dropping

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def function_processes(function_name: str, localstack_pid: int) -> list[int]:
    """PIDs of the host processes running ``function_name`` (one per execution environment) under that LocalStack.

    They are the host executor's runtime processes: descendants of LocalStack's process whose environment names the
    function (``AWS_LAMBDA_FUNCTION_NAME``). Only processes of the given LocalStack are returned, never another's.
    """
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process exited meanwhile
        parents[int(stat.parent.name)] = int(fields[1])

    def descends(pid: int) -> bool:
        seen = 0
        while pid in parents and seen < 64:
            pid, seen = parents[pid], seen + 1
            if pid == localstack_pid:
                return True
        return False

    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    found = []
    for pid in sorted(parents):
        if not descends(pid):
            continue
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environment:
            found.append(pid)
    return found


@contextlib.contextmanager
def function_configuration(
    lambda_client: Any, function: str, *, timeout: int | None = None, **environment: str
) -> Iterator[None]:
    """Change a deployed function's timeout and/or add environment variables (e.g. ``AWS_ENDPOINT_URL_S3`` pointing at
    a ``FaultProxy``) for the block, then restore them. LocalStack starts fresh execution environments for it."""
    original = lambda_client.get_function_configuration(FunctionName=function)
    variables = original["Environment"]["Variables"]
    change: dict[str, Any] = {"Environment": {"Variables": {**variables, **environment}}}
    if timeout is not None:
        change["Timeout"] = timeout
    lambda_client.update_function_configuration(FunctionName=function, **change)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
    try:
        yield
    finally:
        lambda_client.update_function_configuration(
            FunctionName=function, Environment={"Variables": variables}, Timeout=original["Timeout"]
        )
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
