"""The gateway through Starlette's TestClient, with a fake submit: no Redis, no worker.

Zendesk signatures are computed here with hmac/base64 directly; Standard Webhooks ones with the
`standardwebhooks` library, as any sender would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from tests.conftest import json_logs
from tests.support.payloads import fixture, fixture_bytes
from tests.support.processes import redis_full
from worker.engine import Policy
from worker.errors import BrokerUnavailable
from worker.gateway import GatewayDeps, create_app
from worker.models import TicketEvent

ZD_SECRET = "dGhpc2lzYXplbmRlc2tzZWNyZXQ"
INBOUND = "whsec_" + base64.b64encode(b"gateway-inbound-secret-32-bytes!").decode()
FD_TOKEN = "freshdesk-shared-token-0123456789"
IC_SECRET = "intercom-app-client-secret-5f1c"
NOW = datetime(2026, 11, 20, 10, 4, 30, tzinfo=UTC)
SECRETS = {"APOLOGY_ZENDESK_SIGNING_SECRET": ZD_SECRET, "APOLOGY_INBOUND_SECRET": INBOUND,
           "APOLOGY_FRESHDESK_INBOUND_TOKEN": FD_TOKEN, "APOLOGY_HELPSCOUT_SIGNING_SECRET": "helpscout-secret",
           "APOLOGY_INTERCOM_CLIENT_SECRET": IC_SECRET}


@dataclass
class FakeQueue:
    events: list[TicketEvent] = field(default_factory=list)
    down: bool = False

    def submit(self, event: TicketEvent) -> None:
        if self.down:
            raise BrokerUnavailable("ConnectionError: connection refused")
        self.events.append(event)


def make_client(policy: Policy, queue: FakeQueue, secrets: dict[str, str] | None = None,
                max_body: int = 64_000) -> TestClient:
    given = SECRETS if secrets is None else secrets
    deps = GatewayDeps(queue.submit, lambda: not queue.down, policy, lambda env: given.get(env, ""),
                       max_body=max_body, clock=lambda: NOW)
    return TestClient(create_app(deps))


@pytest.fixture()
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture()
def client(policy: Policy, queue: FakeQueue) -> TestClient:
    return make_client(policy, queue)


def zendesk_headers(body: bytes, timestamp: str = "2026-11-20T10:04:00Z", secret: str = ZD_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp, "Content-Type": "application/json"}


def standard_headers(body: bytes, msg_id: str = "msg_1", at: datetime | None = None) -> dict[str, str]:
    when = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(INBOUND).sign(msg_id, when, body.decode()),
            "content-type": "application/json"}


HISTORY: dict[str, Any] = {
    "ticket": {"id": "5158", "subject": "Order arrived broken", "channel": "email"},
    "messages": [
        {"id": "c1", "role": "customer", "body": "My order arrived broken. This is the second time!",
         "created_at": "2026-11-20T09:00:00Z"},
        {"id": "a1", "role": "agent", "author": {"id": "a-17"},
         "body": "Hi Dana, sorry for any inconvenience. I've issued a refund.",
         "created_at": "2026-11-20T09:40:00Z"},
    ],
}


# -- /v1/events/zendesk ----------------------------------------------------------------------------------
def test_signed_zendesk_comment_is_enqueued_and_answered_202_with_its_event_id(client: TestClient,
                                                                                queue: FakeQueue) -> None:
    body = fixture_bytes("zendesk-comment-added.json")
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body))
    assert r.status_code == 202
    assert r.json() == {"status": "accepted", "event_id": "zd-5158-9876543210"}
    assert [e.event_id for e in queue.events] == ["zd-5158-9876543210"]
    assert queue.events[0].message.role == "agent"


def test_replayed_zendesk_request_with_a_stale_timestamp_is_401(client: TestClient, queue: FakeQueue) -> None:
    body = fixture_bytes("zendesk-comment-added.json")
    stale = (NOW - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body, stale))
    assert r.status_code == 401
    assert "replay" in r.json()["detail"]
    assert queue.events == []


def test_malformed_zendesk_payload_is_422_with_field_level_reasons(client: TestClient, queue: FakeQueue) -> None:
    payload = fixture("zendesk-comment-added.json")
    del payload["detail"]["id"]
    body = json.dumps(payload).encode()
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body))
    assert r.status_code == 422
    assert r.json()["issues"] == [{"field": "detail.id", "reason": "missing"}]
    assert queue.events == []


def test_invalid_json_is_422_on_the_body(client: TestClient) -> None:
    body = b"{not json"
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body))
    assert r.status_code == 422
    assert r.json()["issues"][0]["field"] == "(body)"


def test_event_we_do_not_review_is_2xx_with_nothing_enqueued(client: TestClient, queue: FakeQueue) -> None:
    body = fixture_bytes("zendesk-status-changed.json")
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body))
    assert r.status_code == 200
    assert r.json() == {"status": "ignored"}
    assert queue.events == []


def test_oversized_body_is_413_before_authentication_or_parsing(policy: Policy, queue: FakeQueue) -> None:
    client = make_client(policy, queue, max_body=1000)
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    r = client.post("/v1/events/zendesk", content=body)  # unsigned: the size is checked first
    assert r.status_code == 413
    streamed = client.post("/v1/events/generic", content=iter([b"x" * 600, b"x" * 600]))  # no length header
    assert streamed.status_code == 413
    assert client.post("/v1/review", content=body).status_code == 413
    assert queue.events == []


def test_broker_unreachable_is_503_with_retry_after_and_never_2xx(client: TestClient, queue: FakeQueue) -> None:
    queue.down = True
    body = fixture_bytes("zendesk-comment-added.json")
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body))
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) > 0
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    queue.down = False
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body)).status_code == 202


def test_source_without_a_configured_secret_is_503_so_the_helpdesk_retries(policy: Policy,
                                                                            queue: FakeQueue) -> None:
    client = make_client(policy, queue, secrets={})
    body = fixture_bytes("zendesk-comment-added.json")
    r = client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body))
    assert r.status_code == 503
    assert "APOLOGY_ZENDESK_SIGNING_SECRET" in r.json()["detail"]
    assert queue.events == []


def test_unknown_source_is_404(client: TestClient) -> None:
    assert client.post("/v1/events/nope", content=b"{}").status_code == 404


# -- /v1/events/generic and freshdesk --------------------------------------------------------------------
def test_generic_event_signed_per_standard_webhooks_is_accepted(client: TestClient, queue: FakeQueue) -> None:
    body = fixture_bytes("generic-event.json")
    r = client.post("/v1/events/generic", content=body, headers=standard_headers(body))
    assert r.status_code == 202
    assert r.json()["event_id"] == queue.events[0].event_id


def test_generic_event_with_a_stale_timestamp_is_401(client: TestClient, queue: FakeQueue) -> None:
    body = fixture_bytes("generic-event.json")
    headers = standard_headers(body, at=datetime.now(UTC) - timedelta(minutes=10))
    assert client.post("/v1/events/generic", content=body, headers=headers).status_code == 401
    assert queue.events == []


def test_generic_event_missing_required_fields_is_422_naming_them(client: TestClient) -> None:
    body = json.dumps({"event_id": "e1", "ticket": {"id": "1"}}).encode()
    r = client.post("/v1/events/generic", content=body, headers=standard_headers(body))
    assert r.status_code == 422
    assert "message" in {i["field"] for i in r.json()["issues"]}


def test_freshdesk_shared_token(client: TestClient, queue: FakeQueue) -> None:
    body = fixture_bytes("freshdesk-reply.json")
    assert client.post("/v1/events/freshdesk", content=body,
                       headers={"X-Apology-Token": "wrong"}).status_code == 401
    r = client.post("/v1/events/freshdesk", content=body, headers={"X-Apology-Token": FD_TOKEN})
    assert r.status_code == 202
    assert len(queue.events) == 1


def test_a_webhook_template_sent_unfilled_is_422_naming_the_placeholders(client: TestClient,
                                                                        queue: FakeQueue) -> None:
    """An operator's review (session 18): a trigger whose placeholders the helpdesk did not fill was queued
    as ticket "{{ticket.id}}" and its reply "{{ticket.latest_public_comment}}" judged."""
    payload = fixture("freshdesk-reply.json")
    payload["ticket"]["id"] = "{{ticket.id}}"
    payload["conversation"]["body"] = "{{ticket.latest_public_comment}}"
    body = json.dumps(payload).encode()
    r = client.post("/v1/events/freshdesk", content=body, headers={"X-Apology-Token": FD_TOKEN})
    assert r.status_code == 422
    fields = [issue["field"] for issue in r.json()["issues"]]
    assert "ticket.id" in fields and "message.body" in fields
    assert queue.events == []
    # A reply that only mentions a template is a reply.
    payload = fixture("freshdesk-reply.json")
    payload["conversation"]["body"] = "Use {{first_name}} in the macro to greet the customer by name."
    body = json.dumps(payload).encode()
    assert client.post("/v1/events/freshdesk", content=body,
                       headers={"X-Apology-Token": FD_TOKEN}).status_code == 202


# -- /v1/events/intercom --------------------------------------------------------------------------------------
def intercom_headers(body: bytes, secret: str = IC_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
            "Content-Type": "application/json", "User-Agent": "intercom-parrot-service-client/1.0"}


def test_signed_intercom_reply_is_enqueued_with_its_event_id(client: TestClient, queue: FakeQueue) -> None:
    body = fixture_bytes("intercom-admin-replied.json")
    r = client.post("/v1/events/intercom", content=body, headers=intercom_headers(body))
    assert r.status_code == 202
    assert r.json() == {"status": "accepted", "event_id": "ic-215474343849634-45763812690"}
    assert [(e.source, e.message.role, [h.role for h in e.history]) for e in queue.events] == [
        ("intercom", "agent", ["customer"])]


# Each signed source: its fixture, how its requests are signed, its secret, a word of the body to change, and
# the headers that carry the signature (each one missing is a tamper of its own).
SIGNED: dict[str, tuple[str, Callable[..., dict[str, str]], str, tuple[bytes, bytes], tuple[str, ...]]] = {
    "zendesk": ("zendesk-comment-added.json", zendesk_headers, ZD_SECRET, (b"refund", b"rebate"),
                ("X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp")),
    "intercom": ("intercom-admin-replied.json", intercom_headers, IC_SECRET, (b"express", b"courier"),
                 ("X-Hub-Signature",)),
}


@pytest.mark.parametrize(("source", "tamper"), [(source, tamper) for source, (*_, carried) in SIGNED.items()
                                                for tamper in ("body", "secret", *carried)])
def test_a_bad_or_missing_signature_is_401_and_nothing_is_enqueued(client: TestClient, queue: FakeQueue,
                                                                   source: str, tamper: str) -> None:
    name, sign, secret, (word, changed), carried = SIGNED[source]
    body = fixture_bytes(name)
    headers = sign(body, secret="other" if tamper == "secret" else secret)
    if tamper == "body":
        body = body.replace(word, changed)
    if tamper in carried:
        del headers[tamper]
    r = client.post(f"/v1/events/{source}", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["status"] == 401
    assert queue.events == []


def test_intercom_ping_is_200_ignored_and_its_url_answers_head(client: TestClient, queue: FakeQueue) -> None:
    body = json.dumps({"type": "notification_event", "topic": "ping", "id": "notif_ping",
                       "data": {"item": {"type": "ping", "message": "Hello"}}}).encode()
    r = client.post("/v1/events/intercom", content=body, headers=intercom_headers(body))
    assert (r.status_code, r.json()) == (200, {"status": "ignored"})
    assert queue.events == []
    # Intercom checks a webhook URL with HEAD before saving it; an unknown source is still 404.
    assert client.head("/v1/events/intercom").status_code == 200
    assert client.head("/v1/events/nope").status_code == 404


def test_intercom_without_its_client_secret_is_503_naming_the_variable(policy: Policy, queue: FakeQueue) -> None:
    client = make_client(policy, queue, secrets={})
    assert client.head("/v1/events/intercom").status_code == 503  # so Intercom will not save a dead webhook
    body = fixture_bytes("intercom-admin-replied.json")
    r = client.post("/v1/events/intercom", content=body, headers=intercom_headers(body))
    assert r.status_code == 503 and "APOLOGY_INTERCOM_CLIENT_SECRET" in r.json()["detail"]


# -- /v1/review ----------------------------------------------------------------------------------------------
def test_review_answers_the_verdict_of_the_last_agent_message(client: TestClient, queue: FakeQueue) -> None:
    body = json.dumps(HISTORY).encode()
    r = client.post("/v1/review", content=body, headers=standard_headers(body))
    assert r.status_code == 200
    verdict = r.json()
    assert (verdict["ticket_id"], verdict["message_id"]) == ("5158", "a1")
    assert verdict["signals"]["apology"] == "generic"
    assert "generic-apology" in {f["rule"] for f in verdict["findings"]}
    assert queue.events == []  # in process, never the queue


def test_review_judges_the_last_agent_message_even_a_draft_marked_private(client: TestClient) -> None:
    """Not the verdict of an earlier reply in its place, which would pass a draft nobody judged."""
    draft = {"id": "a2", "role": "agent", "public": False, "body": "As I already told you, read the terms."}
    body = json.dumps({**HISTORY, "messages": [*HISTORY["messages"], draft]}).encode()
    r = client.post("/v1/review", content=body, headers=standard_headers(body))
    assert r.status_code == 200
    assert r.json()["message_id"] == "a2" and r.json()["signals"]["blame"] is True


def test_review_requires_the_inbound_signature_when_the_secret_is_set(client: TestClient) -> None:
    body = json.dumps(HISTORY).encode()
    assert client.post("/v1/review", content=body).status_code == 401
    stale = standard_headers(body, at=datetime.now(UTC) - timedelta(minutes=10))
    assert client.post("/v1/review", content=body, headers=stale).status_code == 401


def test_review_is_open_when_no_inbound_secret_is_set(policy: Policy, queue: FakeQueue) -> None:
    client = make_client(policy, queue, secrets={})
    assert client.post("/v1/review", json=HISTORY).status_code == 200


def test_review_without_an_agent_message_or_with_bad_fields_is_422(client: TestClient) -> None:
    only_customer = {"ticket": {"id": "1"}, "messages": [HISTORY["messages"][0]]}
    body = json.dumps(only_customer).encode()
    r = client.post("/v1/review", content=body, headers=standard_headers(body))
    assert r.status_code == 422
    assert r.json()["issues"][0]["field"] == "messages"
    body = json.dumps({"ticket": {}, "messages": []}).encode()
    r = client.post("/v1/review", content=body, headers=standard_headers(body))
    assert r.status_code == 422
    assert {"ticket.id", "messages"} <= {i["field"] for i in r.json()["issues"]}


def test_openapi_is_published(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/events/{source}", "/v1/review", "/healthz", "/readyz"} <= set(doc["paths"])
    assert {"TicketHistory", "Verdict", "Problem"} <= set(doc["components"]["schemas"])


def test_the_gateway_is_not_ready_while_redis_is_full(monkeypatch: pytest.MonkeyPatch, redis_srv: Any) -> None:
    """A full Redis answers a ping but refuses every event: the load balancer should stop sending them."""
    import redis

    from worker import bootstrap
    from worker.gateway import from_env
    from worker.settings import load_settings

    monkeypatch.setenv("APOLOGY_BROKER_URL", redis_srv.url)
    monkeypatch.setattr(bootstrap, "settings", lambda: load_settings())  # not the process's cached settings
    admin = redis.Redis.from_url(redis_srv.url)
    with TestClient(from_env()) as client:
        assert client.get("/readyz").status_code == 200
        with redis_full(admin):
            answer = client.get("/readyz")
            assert answer.status_code == 503 and answer.json()["detail"] == "the broker is unreachable or full"
        assert client.get("/readyz").status_code == 200


def test_refusals_and_the_start_are_logged_without_a_customer_word(policy: Policy, queue: FakeQueue,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """An operator's review (session 18): a 413 or 422 left no log line, and nothing said at start which
    sources were on or that /v1/review was open. The 422 line names the fields at fault, not their values."""
    from worker.gateway import announce

    with json_logs(capsys) as read:
        announce(policy, lambda env: {"APOLOGY_ZENDESK_SIGNING_SECRET": ZD_SECRET}.get(env, ""))
        client = make_client(policy, queue, max_body=10_000)
        payload = fixture("zendesk-comment-added.json")
        del payload["detail"]["id"]
        payload["detail"]["description"] = "CUSTOMERWORDS my order is late"
        body = json.dumps(payload).encode()
        assert client.post("/v1/events/zendesk", content=body, headers=zendesk_headers(body)).status_code == 422
        assert client.post("/v1/events/generic", content=b"x" * 20_000).status_code == 413
        lines = read()
    by_event = {(line["event"], line.get("status")): line for line in lines}
    ready = by_event[("gateway ready", None)]
    assert ready["sources"] == ["zendesk"] and ready["policy"] == policy.name
    assert any(line["level"] == "warning" and "APOLOGY_INBOUND_SECRET" in line["event"] for line in lines)
    assert by_event[("event refused", 422)]["fields"] == ["detail.id"]
    assert by_event[("event refused", 413)]["source"] == "generic"
    assert "CUSTOMERWORDS" not in json.dumps(lines)
