"""End to end: a signed Zendesk comment webhook in, a Zendesk internal note out.

Real redis-server, a real `celery -A worker.app worker`, the gateway as `apology-worker serve` on a free
port, and a local fake of the Zendesk API (configured as the target's api_url) that records every request.
Signatures are computed here with hmac/base64, independently of the adapter.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.payloads import fixture
from tests.support.processes import (
    Proc,
    celery_worker,
    free_port,
    python_env,
    redis_server,
    spawn,
    venv_bin,
    wait_until,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ZD_SECRET = "e2e-zendesk-signing-secret"
AUTH = "Basic " + base64.b64encode(b"bot@acme.example/token:tok-e2e").decode()


@dataclass
class FakeZendesk:
    """Answers 200 to everything and records (method, path, headers, body) of each request."""

    requests: list[tuple[str, str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                      json.loads(body or b"{}")))
                payload = b'{"ticket":{}}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    gateway: str
    zendesk: FakeZendesk
    broker: redis.Redis
    worker: Proc

    def idle(self) -> bool:
        return self.broker.llen("apology") == 0 and self.broker.hlen("unacked") == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gateway-e2e")
    zendesk = FakeZendesk()
    routes = tmp / "routes.yaml"
    routes.write_text(f"targets:\n  zendesk:\n    type: zendesk\n    subdomain: acme\n    email: bot@acme.example\n"
                      f"    api_token: tok-e2e\n    api_url: {zendesk.url}\n"
                      "routes:\n  - targets: [zendesk]\n    actions: [annotate, escalate]\n")
    with redis_server(tmp) as server:
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_ROUTES": str(routes), "APOLOGY_LOG_FORMAT": "json",
               "APOLOGY_ZENDESK_SIGNING_SECRET": ZD_SECRET,
               "APOLOGY_ALLOW_PRIVATE_TARGETS": "true"}  # the fake Zendesk API is on 127.0.0.1
        port = free_port()
        gateway = spawn([venv_bin("apology-worker"), "serve", "--port", str(port)], env=python_env(**env), cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            with celery_worker(env, concurrency=2, cwd=ROOT) as worker:
                wait_until(lambda: _ready(url, gateway), timeout=30, what="gateway /readyz")
                yield Stack(url, zendesk, redis.Redis.from_url(server.url), worker)
        finally:
            gateway.stop()
            zendesk.close()


def _ready(url: str, proc: Proc) -> bool:
    if proc.popen.poll() is not None:
        raise RuntimeError(f"the gateway exited:\n{proc.output()}")
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(ZD_SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return body, {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
                  "X-Zendesk-Webhook-Signature-Timestamp": stamp, "Content-Type": "application/json"}


def comment(comment_id: str, body: str, *, staff: bool, minutes: int) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("zendesk-comment-added.json"))
    author = ({"id": "8447388090495", "is_staff": True, "name": "Sam Agent"} if staff
              else {"id": "8447388090123", "is_staff": False, "name": "Dana"})
    payload["event"]["comment"] = {"id": comment_id, "body": body, "is_public": True, "author": author,
                                   "created_at": f"2026-11-20T10:{minutes:02d}:00Z"}
    payload["time"] = f"2026-11-20T10:{minutes:02d}:00Z"
    return payload


def test_signed_zendesk_comments_in_give_one_internal_note_with_tags_out(stack: Stack) -> None:
    customer = comment("9876540001", "My order arrived broken and nobody answers. I want a refund now.",
                       staff=False, minutes=1)
    reply = comment("9876540002", "Hi Dana, sorry for any inconvenience. I've issued a refund.",
                    staff=True, minutes=4)
    for payload, event_id in ((customer, "zd-5158-9876540001"), (reply, "zd-5158-9876540002")):
        body, headers = signed(payload)
        r = httpx.post(stack.gateway + "/v1/events/zendesk", content=body, headers=headers, timeout=10)
        assert r.status_code == 202, r.text
        assert r.json() == {"status": "accepted", "event_id": event_id}

    wait_until(lambda: len(stack.zendesk.requests) >= 1, timeout=30, what="a request to the fake Zendesk")
    wait_until(stack.idle, timeout=30, what="worker idle")
    assert len(stack.zendesk.requests) == 1, stack.zendesk.requests
    method, path, headers, body = stack.zendesk.requests[0]
    assert (method, path) == ("PUT", "/api/v2/tickets/5158.json")
    assert headers["authorization"] == AUTH
    note = body["ticket"]["comment"]
    assert note["public"] is False
    assert "generic-apology" in note["html_body"]
    assert "Name what went wrong" in note["html_body"]  # the suggestion
    assert "sorry for any inconvenience" in note["html_body"]
    assert {"apology-review", "apology-generic-apology"} <= set(body["ticket"]["additional_tags"])
    assert "tags" not in body["ticket"]  # added, never replacing the ticket's own

    # A bad signature is refused and enqueues nothing.
    body_bytes, bad = signed(reply)
    bad["X-Zendesk-Webhook-Signature"] = base64.b64encode(b"x" * 32).decode()
    assert httpx.post(stack.gateway + "/v1/events/zendesk", content=body_bytes, headers=bad).status_code == 401
