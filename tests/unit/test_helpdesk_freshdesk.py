"""Freshdesk adapter: the shipped automation webhook body (and Freshdesk's conversation resource)."""

from __future__ import annotations

import base64

import pytest

from tests.support.payloads import EXAMPLES, fixture, fixture_bytes, render_template
from worker.errors import PayloadError, SignatureError
from worker.helpdesks.freshdesk import to_event, verify_freshdesk
from worker.targets.notes import NOTE_SIGNATURE


def test_agent_reply_from_the_shipped_template() -> None:
    event = to_event(fixture_bytes("freshdesk-reply.json"), {})
    assert event is not None
    assert event.source == "freshdesk"
    assert event.ticket.model_dump() == {"id": "4021", "subject": "Charged twice for my subscription",
                                         "channel": "email", "tags": ["billing", "vip"], "team": "Billing"}
    m = event.message
    assert (m.role, m.format, m.public) == ("agent", "html", True)
    # Freshdesk's "Author : " prefix is removed; the HTML is kept as sent.
    assert m.body.startswith('<div dir="ltr">Hi Dana, we apologise') and m.body.endswith("</div>")
    assert m.author is not None and (m.author.id, m.author.name) == ("sam@acme.example", "Sam Agent")
    assert event.event_id.startswith("fd-4021-h")


def test_customer_reply_rule_sets_incoming() -> None:
    data = fixture("freshdesk-reply.json")
    data["conversation"].update(incoming="true", body="Dana Customer : <div>Still waiting!</div>",
                                user={"name": "Dana Customer", "email": "dana@example.com"})
    event = to_event(data, {})
    assert event is not None
    assert (event.message.role, event.message.body) == ("customer", "<div>Still waiting!</div>")


def test_conversation_resource_user_id_against_requester_id() -> None:
    data = {"ticket": {"id": 4021, "requester_id": 77, "source": 7, "tags": ["billing"]},
            "conversation": {"id": 9001, "body": "<div>Where is my refund?</div>",
                             "body_text": "Where is my refund?", "incoming": False, "private": False,
                             "user_id": 77, "created_at": "2026-11-20T10:04:00Z"}}
    event = to_event(data, {})
    assert event is not None
    assert (event.event_id, event.message.role, event.ticket.channel) == ("fd-4021-9001", "customer", "chat")
    data["conversation"]["user_id"] = 12
    event = to_event(data, {})
    assert event is not None and event.message.role == "agent"


def test_email_match_decides_when_incoming_is_absent() -> None:
    data = fixture("freshdesk-reply.json")
    del data["conversation"]["incoming"]
    data["conversation"]["user"]["email"] = "DANA@example.com"
    event = to_event(data, {})
    assert event is not None and event.message.role == "customer"


def test_simple_webhook_wrapper_is_unwrapped() -> None:
    event = to_event({"freshdesk_webhook": fixture("freshdesk-reply.json")}, {})
    assert event is not None and event.ticket.id == "4021"


def test_same_reply_twice_is_the_same_event() -> None:
    first = to_event(fixture("freshdesk-reply.json"), {})
    again = to_event(fixture("freshdesk-reply.json"), {})
    assert first is not None and again is not None and first.event_id == again.event_id


def test_private_notes_are_marked_private_and_our_own_are_ignored() -> None:
    data = fixture("freshdesk-reply.json")
    data["conversation"].update(private=True, body="<div>Internal: customer is a VIP.</div>")
    event = to_event(data, {})
    assert event is not None and event.message.public is False
    data["conversation"]["body"] = f"<p>Apology review</p><p><small>{NOTE_SIGNATURE} · policy x</small></p>"
    assert to_event(data, {}) is None


def test_role_cannot_be_guessed() -> None:
    data = fixture("freshdesk-reply.json")
    del data["conversation"]["incoming"]
    del data["ticket"]["requester"]
    with pytest.raises(PayloadError) as err:
        to_event(data, {})
    assert err.value.issues[0]["field"] == "conversation.incoming"


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.pop("ticket"), "ticket"),
    (lambda d: d["ticket"].update(id=None), "ticket.id"),
    (lambda d: d["conversation"].update(private="perhaps"), "conversation.private"),
    (lambda d: d["conversation"].update(created_at=12), "conversation.created_at"),
])
def test_malformed_payloads_name_the_field(edit: object, field: str) -> None:
    data = fixture("freshdesk-reply.json")
    edit(data)  # type: ignore[operator]
    with pytest.raises(PayloadError) as err:
        to_event(data, {})
    assert err.value.issues[0]["field"] == field


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("headers", [
    {"X-Apology-Token": "s3cret-token"},
    {"authorization": basic("freshdesk", "s3cret-token")},
    {"Authorization": basic("s3cret-token", "X")},
])
def test_shared_token_is_accepted(headers: dict[str, str]) -> None:
    verify_freshdesk(headers, "s3cret-token")


@pytest.mark.parametrize("headers", [
    {}, {"X-Apology-Token": "wrong"}, {"Authorization": basic("freshdesk", "wrong")},
    {"Authorization": "Basic !!!not-base64"}, {"Authorization": "Bearer s3cret-token"},
])
def test_missing_or_wrong_token_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify_freshdesk(headers, "s3cret-token")


def test_the_shipped_webhook_template_is_read() -> None:
    body = render_template(EXAMPLES / "freshdesk-webhook-body.json", {
        "ticket.id": "4021", "ticket.subject": "Charged twice", "ticket.tags": "billing",
        "ticket.source": "Portal", "ticket.group.name": "Billing", "ticket.url": "https://acme.freshdesk.com/x",
        "ticket.requester.name": "Dana", "ticket.requester.email": "dana@example.com",
        "ticket.latest_public_comment": "Sam : <div>Sorry for the double charge, refunded.</div>",
        "ticket.agent.name": "Sam", "ticket.agent.email": "sam@acme.example",
    })
    event = to_event(body, {})
    assert event is not None
    assert (event.message.role, event.message.body, event.ticket.channel) == (
        "agent", "<div>Sorry for the double charge, refunded.</div>", "portal")
