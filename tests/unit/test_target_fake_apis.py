"""Every delivery target, through the real delivery path (HTTP over loopback), against a local fake of its API.

The fake records exactly what arrived: method, path, headers and body; each target's own unit tests pin
the payload, these prove the request survives signing, routing, the SSRF guard and the HTTP client intact.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from tests.support.payloads import GENERIC, LIABILITY, verdict
from worker.delivery import new_client
from worker.egress import Egress
from worker.engine import load_policy
from worker.pipeline import DeliveryJob, Deps, deliver
from worker.routing import build_router
from worker.stores import Stores
from worker.targets.base import delivery_id


@dataclass
class FakeAPI:
    """A loopback HTTP server answering 200 and recording each request."""

    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def __enter__(self) -> FakeAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200 if self.command != "POST" or "enqueue" not in self.path else 202)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_PUT = _record

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture()
def api() -> Iterator[FakeAPI]:
    with FakeAPI() as fake:
        yield fake


def _deliver(tmp_path: Path, target_yaml: str, action: str = "escalate") -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"targets:\n  t:\n{target_yaml}routes:\n  - targets: [t]\n    actions: [annotate, escalate]\n",
                      encoding="utf-8")
    router = build_router(routes_path=routes)
    v = verdict(action=action, findings=(LIABILITY, GENERIC), legal_risk=True, liability=True)
    job = DeliveryJob(delivery_id(v, "t"), "t", v.model_dump(mode="json"), "zendesk:zd-1").to_payload()
    client = new_client(5.0, 5.0)
    deps = Deps(Stores(fakeredis.FakeRedis()), load_policy("liability-aware"), router, lambda job: None,
                lambda: client, egress=Egress.from_settings(True, None))
    assert deliver(job, deps).status == "delivered"


def test_zendesk_note_and_tags(api: FakeAPI, tmp_path: Path) -> None:
    _deliver(tmp_path, f"    type: zendesk\n    subdomain: acme\n    email: bot@acme.example\n    api_token: tok\n"
                       f"    api_url: {api.url}\n")
    [(method, path, headers, body)] = api.seen
    assert (method, path) == ("PUT", "/api/v2/tickets/5158.json")
    assert headers["authorization"] == "Basic " + base64.b64encode(b"bot@acme.example/token:tok").decode()
    assert headers["content-type"] == "application/json"
    ticket = json.loads(body)["ticket"]
    assert ticket["comment"]["public"] is False and "liability-admission" in ticket["comment"]["html_body"]
    assert "apology-escalated" in ticket["additional_tags"] and "tags" not in ticket


def test_freshdesk_private_note(api: FakeAPI, tmp_path: Path) -> None:
    _deliver(tmp_path, f"    type: freshdesk\n    domain: acme\n    api_key: key123\n    api_url: {api.url}\n")
    [(method, path, headers, body)] = api.seen
    assert (method, path) == ("POST", "/api/v2/tickets/5158/notes")
    assert headers["authorization"] == "Basic " + base64.b64encode(b"key123:X").decode()
    note = json.loads(body)
    assert note["private"] is True and "liability-admission" in note["body"]


def test_intercom_note(api: FakeAPI, tmp_path: Path) -> None:
    _deliver(tmp_path, f"    type: intercom\n    access_token: tok-ic\n    admin_id: 6827951\n    api_url: {api.url}\n")
    [(method, path, headers, body)] = api.seen
    assert (method, path) == ("POST", "/conversations/5158/reply")
    assert headers["authorization"] == "Bearer tok-ic" and headers["intercom-version"] == "2.11"
    assert headers["content-type"] == "application/json"
    note = json.loads(body)
    assert (note["message_type"], note["type"], note["admin_id"]) == ("note", "admin", "6827951")
    assert "liability-admission" in note["body"] and "Why now" in note["body"]


def test_slack_message(api: FakeAPI, tmp_path: Path) -> None:
    _deliver(tmp_path, f"    type: slack\n    webhook_url: {api.url}/services/T0/B0/X\n")
    [(method, path, headers, body)] = api.seen
    assert (method, path, headers["content-type"]) == ("POST", "/services/T0/B0/X", "application/json")
    message = json.loads(body)
    assert message["text"].startswith("Ticket 5158") and message["blocks"][0]["type"] == "header"


def test_pagerduty_event(api: FakeAPI, tmp_path: Path) -> None:
    _deliver(tmp_path, f"    type: pagerduty\n    routing_key: R0UTINGKEY\n    api_url: {api.url}/v2/enqueue\n")
    [(method, path, headers, body)] = api.seen
    assert (method, path, headers["content-type"]) == ("POST", "/v2/enqueue", "application/json")
    event = json.loads(body)
    assert event["routing_key"] == "R0UTINGKEY" and event["event_action"] == "trigger"
    assert event["dedup_key"] and event["payload"]["severity"] in ("critical", "error", "warning")


def test_generic_webhook_is_signed(api: FakeAPI, tmp_path: Path) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    _deliver(tmp_path, f"    type: webhook\n    url: {api.url}/hooks\n    secret: {secret}\n")
    [(method, path, headers, body)] = api.seen
    assert (method, path) == ("POST", "/hooks")
    from standardwebhooks import Webhook

    payload = Webhook(secret).verify(body, {k: headers[k] for k in ("webhook-id", "webhook-timestamp",
                                                                      "webhook-signature")})
    assert payload["type"] == "reply.escalated" and payload["data"]["ticket_id"] == "5158"
