"""Help Scout adapter: conversation webhooks, the event named in X-HelpScout-Event; signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.support.payloads import fixture, fixture_bytes
from worker.errors import PayloadError, SignatureError
from worker.helpdesks.helpscout import authenticate, to_event, verify_helpscout
from worker.targets.notes import NOTE_SIGNATURE

AGENT = {"X-HelpScout-Event": "convo.agent.reply.created"}
CUSTOMER = {"X-HelpScout-Event": "convo.customer.reply.created"}


def test_agent_reply_with_the_conversation_as_history() -> None:
    event = to_event(fixture_bytes("helpscout-agent-reply.json"), AGENT)
    assert event is not None
    assert event.event_id == "hs-291938-3003"
    assert event.ticket.model_dump() == {"id": "291938", "subject": "Package never arrived",
                                         "channel": "email", "tags": ["shipping"], "team": "Support"}
    m = event.message
    assert (m.id, m.role, m.format, m.public) == ("3003", "agent", "html", True)
    assert m.body.startswith("<p>Hi Dana, I'm sorry your package is late.")
    assert m.author is not None and (m.author.id, m.author.name) == ("7", "Sam Agent")
    # The line item ("assigned") is not conversation; the customer's message is the context.
    assert [(h.id, h.role) for h in event.history] == [("3001", "customer")]


def test_customer_reply_picks_the_latest_customer_thread() -> None:
    headers = {"x-helpscout-event": "convo.customer.reply.created"}  # header names in any case
    event = to_event(fixture("helpscout-agent-reply.json"), headers)
    assert event is not None
    assert (event.message.id, event.message.role, event.history) == ("3001", "customer", [])


def test_conversation_created_takes_the_first_thread() -> None:
    event = to_event(fixture("helpscout-agent-reply.json"), {"X-HelpScout-Event": "convo.created"})
    assert event is not None and event.message.id == "3001"


def test_note_is_private_and_our_own_note_is_ignored() -> None:
    data = fixture("helpscout-agent-reply.json")
    note = {"id": 3004, "type": "note", "state": "published", "body": "<p>VIP, be careful</p>",
            "createdBy": {"id": 7, "type": "user"}, "createdAt": "2026-11-20T10:10:00Z"}
    data["_embedded"]["threads"].insert(0, note)
    event = to_event(data, {"X-HelpScout-Event": "convo.note.created"})
    assert event is not None and (event.message.id, event.message.public) == ("3004", False)
    note["body"] = f"<p>Apology review</p><p>{NOTE_SIGNATURE}</p>"
    assert to_event(data, {"X-HelpScout-Event": "convo.note.created"}) is None


def test_legacy_threads_list_and_created_by_customer_flag() -> None:
    data = fixture("helpscout-agent-reply.json")
    threads = data.pop("_embedded")["threads"]
    for t in threads:
        t.pop("createdBy")
    threads[2]["createdByCustomer"] = True
    data["threads"] = threads
    event = to_event(data, CUSTOMER)
    assert event is not None and event.message.id == "3001" and event.message.author is None


def test_events_without_a_message_are_ignored() -> None:
    assert to_event(fixture("helpscout-agent-reply.json"), {"X-HelpScout-Event": "convo.assigned"}) is None
    assert to_event(b'{"id": 291938}', {"X-HelpScout-Event": "convo.deleted"}) is None


def test_drafts_are_not_replies() -> None:
    data = fixture("helpscout-agent-reply.json")
    data["_embedded"]["threads"][0]["state"] = "draft"
    with pytest.raises(PayloadError, match="no agent thread"):
        to_event(data, AGENT)


def test_missing_event_header_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as err:
        to_event(fixture("helpscout-agent-reply.json"), {})
    assert "X-HelpScout-Event" in err.value.issues[0]["field"]


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.pop("id"), "id"),
    (lambda d: d["_embedded"].update(threads={}), "_embedded.threads"),
    (lambda d: d["_embedded"]["threads"][0].update(createdAt="soon"), "_embedded.threads[0].createdAt"),
    (lambda d: d["_embedded"]["threads"][0].pop("id"), "_embedded.threads[0].id"),
])
def test_malformed_payloads_name_the_field(edit: object, field: str) -> None:
    data = fixture("helpscout-agent-reply.json")
    edit(data)  # type: ignore[operator]
    with pytest.raises(PayloadError) as err:
        to_event(data, AGENT)
    assert err.value.issues[0]["field"] == field


def helpscout_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def test_signature_is_base64_hmac_sha1_of_the_body() -> None:
    body = fixture_bytes("helpscout-agent-reply.json")
    verify_helpscout(body, helpscout_signature(body, "hs-secret"), "hs-secret")
    authenticate(body, {"X-HelpScout-Signature": helpscout_signature(body, "hs-secret")}, "hs-secret",
                 None)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="does not match"):
        verify_helpscout(body + b" ", helpscout_signature(body, "hs-secret"), "hs-secret")
    with pytest.raises(SignatureError, match="missing"):
        verify_helpscout(body, None, "hs-secret")
