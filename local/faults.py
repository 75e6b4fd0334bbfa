"""A fault-injecting HTTP proxy in front of LocalStack, for the end-to-end fault tests.

LocalStack's free edition has no fault injection, so the tests point the *deployed* function's S3 or SQS endpoint
(``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL_SQS`` in its environment) at this proxy, which forwards to LocalStack
and, on demand:

* drops connections without an answer (S3 taken away: every request fails at the network level);
* answers matching requests with an error (``503 SlowDown`` for S3 throttling, an SQS error for DLQ failures),
  either always, a number of times, or once per distinct path (each object's first PUT is throttled).

Everything stays on 127.0.0.1 and the proxy stops with ``stop()``.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Rule:
    """Answer requests matching ``match`` with ``response`` (status, content type, body)."""

    match: Callable[[Request], bool]
    response: tuple[int, str, bytes]
    times: int | None = None  # None: every match; n: the first n matches
    once_per_path: bool = False  # only the first match of each path (e.g. each object's first PUT)
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

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command, self.path.split("?", 1)[0], {k.lower(): v for k, v in self.headers.items()}
                )
                with proxy._lock:
                    if proxy.dropping:
                        proxy.dropped += 1
                        self.close_connection = True
                        return  # no answer at all: the client sees the connection closed
                    rule = next((r for r in proxy.rules if r.applies(request)), None)
                if rule is not None:
                    status, content_type, payload = rule.response
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
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

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
