"""Test helpers for people who integrate with apology-worker: a local webhook receiver.

`WebhookReceiver` listens on 127.0.0.1, verifies every request's Standard Webhooks signature with the
`standardwebhooks` library (exactly as a real receiver would), records what arrived, and lets a test wait
for a condition with a deadline instead of sleeping:

    with WebhookReceiver(secret) as receiver:
        ...  # point APOLOGY_WEBHOOK_URL at receiver.url
        receiver.wait_for(lambda r: len(r.deliveries) >= 3, timeout=30)

`respond` decides the status of each request (for retry tests): return a status, or a (status, headers)
pair.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

Responder = Callable[["Request"], "int | tuple[int, dict[str, str]]"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request as received, before verification."""

    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.time()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request whose signature verified: the webhook id, the parsed body, when it arrived."""

    id: str
    type: str
    data: dict[str, Any]
    body: dict[str, Any]
    received_at: float


@dataclass
class WebhookReceiver:
    secret: str
    respond: Responder | None = None
    host: str = "127.0.0.1"
    port: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    rejected: list[tuple[Request, str]] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._verifier = Webhook(self.secret)
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length), time.time())
                status, headers = receiver._receive(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="webhook-receiver")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks/apology"

    # -- receiving ------------------------------------------------------------------------------------
    def _receive(self, request: Request) -> tuple[int, dict[str, str]]:
        answer = self.respond(request) if self.respond is not None else 204
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        try:
            body = self._verifier.verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            with self._changed:
                self.requests += 1
                self.rejected.append((request, str(exc)))
                self._changed.notify_all()
            return 401, {}
        with self._changed:
            self.requests += 1
            if 200 <= status < 300:
                self.deliveries.append(Delivery(request.headers["webhook-id"], body.get("type", ""),
                                                body.get("data", {}), body, request.received_at))
            self._changed.notify_all()
        return status, headers

    # -- waiting ----------------------------------------------------------------------------------------
    def wait_for(self, condition: Callable[[WebhookReceiver], bool], timeout: float = 30.0) -> None:
        """Block until `condition(self)` holds; TimeoutError with what arrived once `timeout` passes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s: {len(self.deliveries)} "
                                       f"deliveries, {len(self.rejected)} rejected, {self.requests} requests")
                self._changed.wait(remaining)

    def wait_for_deliveries(self, count: int, timeout: float = 30.0) -> list[Delivery]:
        self.wait_for(lambda r: len(r.deliveries) >= count, timeout)
        return list(self.deliveries)

    def delivery_ids(self) -> list[str]:
        with self._changed:
            return [d.id for d in self.deliveries]
