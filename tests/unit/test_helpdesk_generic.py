"""Generic adapter: the canonical event itself, signed per Standard Webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from tests.support.payloads import fixture, fixture_bytes
from worker.errors import ConfigError, PayloadError, SignatureError
from worker.helpdesks.generic import to_event, verify_generic

KEY = b"generic-inbound-test-key-32bytes"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def signed_headers(body: bytes, msg_id: str = "msg_1", at: int | None = None,
                   key: bytes = KEY) -> dict[str, str]:
    """Standard Webhooks signature computed here: HMAC-SHA256(key, "id.timestamp.body"), base64, "v1,"."""
    ts = str(at if at is not None else int(time.time()))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{sig}"}


def test_canonical_event_passes_through() -> None:
    event = to_event(fixture_bytes("generic-event.json"), {})
    assert event is not None
    assert (event.event_id, event.source, event.ticket.team) == ("crm-evt-000417", "generic", "devices")
    assert [h.role for h in event.history] == ["customer"]


def test_a_named_source_is_kept() -> None:
    data = fixture("generic-event.json")
    data["source"] = "in-house-crm"
    event = to_event(data, {})
    assert event is not None and event.source == "in-house-crm"


def test_contract_violations_are_field_level() -> None:
    data = fixture("generic-event.json")
    data["message"]["role"] = "robot"
    del data["ticket"]["id"]
    with pytest.raises(PayloadError) as err:
        to_event(data, {})
    assert sorted(i["field"] for i in err.value.issues) == ["message.role", "ticket.id"]


def test_signed_request_is_accepted() -> None:
    body = fixture_bytes("generic-event.json")
    verify_generic(body, signed_headers(body), SECRET)


@pytest.mark.parametrize("headers", [
    {},
    {"webhook-id": "msg_1", "webhook-timestamp": "0", "webhook-signature": "v1,AAAA"},
    {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "garbage"},
    {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,!!"},
])
def test_malformed_or_missing_headers_are_signature_errors(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify_generic(b"{}", headers, SECRET)


def test_tampered_stale_or_foreign_requests_are_rejected() -> None:
    body = fixture_bytes("generic-event.json")
    with pytest.raises(SignatureError):
        verify_generic(body + b" ", signed_headers(body), SECRET)
    with pytest.raises(SignatureError, match="too old"):
        verify_generic(body, signed_headers(body, at=int(time.time()) - 3600), SECRET)
    with pytest.raises(SignatureError):
        verify_generic(body, signed_headers(body, key=b"someone-else"), SECRET)


def test_missing_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="APOLOGY_INBOUND_SECRET"):
        verify_generic(b"{}", {}, "")
