"""Zendesk adapter: event webhooks and the shipped trigger body to the canonical event; signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.payloads import EXAMPLES, fixture, fixture_bytes, render_template
from worker.errors import ConfigError, PayloadError, SignatureError
from worker.helpdesks.zendesk import authenticate, to_event, verify_zendesk
from worker.targets.notes import NOTE_SIGNATURE

SECRET = "dGhpc2lzYXplbmRlc2tzZWNyZXQ"
NOW = datetime(2026, 11, 20, 10, 4, 30, tzinfo=UTC)
STAMP = "2026-11-20T10:04:00Z"


def zendesk_signature(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    """Computed here, independently of the adapter: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_comment_added_event_becomes_the_canonical_event() -> None:
    event = to_event(fixture_bytes("zendesk-comment-added.json"), {})
    assert event is not None
    assert event.event_id == "zd-5158-9876543210"
    assert event.source == "zendesk"
    assert event.occurred_at == datetime(2026, 11, 20, 10, 4, 0, 123456, tzinfo=UTC)
    assert event.ticket.model_dump() == {"id": "5158", "subject": "Order arrived broken", "channel": "email",
                                         "tags": ["vip", "returns"], "team": "360009876543"}
    m = event.message
    assert (m.id, m.role, m.format, m.public) == ("9876543210", "agent", "text", True)
    assert m.body == "Hi Dana, sorry for any inconvenience. I've issued a refund."
    assert m.author is not None and (m.author.id, m.author.name) == ("8447388090495", "Sam Agent")


def test_customer_comment_is_told_apart_by_is_staff() -> None:
    data = fixture("zendesk-comment-added.json")
    data["event"]["comment"]["author"] = {"id": "8447388090123", "is_staff": False, "name": "Dana"}
    event = to_event(data, {})
    assert event is not None and event.message.role == "customer"


@pytest.mark.parametrize(("author_id", "role"),
                         [("8447388090123", "customer"), ("555", "agent"), ("-1", "system")])
def test_without_is_staff_the_requester_decides(author_id: str, role: str) -> None:
    data = fixture("zendesk-comment-added.json")
    data["event"]["comment"]["author"] = {"id": author_id, "name": "Someone"}
    event = to_event(data, {})
    assert event is not None and event.message.role == role


def test_html_body_is_kept_as_html() -> None:
    data = fixture("zendesk-comment-added.json")
    data["event"]["comment"]["html_body"] = "<p>Hi Dana, <b>sorry</b> for any inconvenience.</p>"
    event = to_event(data, {})
    assert event is not None
    assert event.message.format == "html"
    assert event.message.body == "<p>Hi Dana, <b>sorry</b> for any inconvenience.</p>"


def test_other_event_types_are_ignored() -> None:
    assert to_event(fixture_bytes("zendesk-status-changed.json"), {}) is None


def test_our_own_internal_note_coming_back_is_ignored() -> None:
    data = fixture("zendesk-comment-added.json")
    note = f"Apology review: 1 finding\n{NOTE_SIGNATURE} · policy x"
    data["event"]["comment"].update(body=note, is_public=False)
    assert to_event(data, {}) is None
    data["event"]["comment"]["is_public"] = True  # a public comment quoting it is still reviewed
    assert to_event(data, {}) is not None


def test_trigger_body_with_rendered_strings() -> None:
    event = to_event(fixture("zendesk-trigger.json"), {})
    assert event is not None
    assert event.event_id == "zd-5158-9876543210"
    assert event.ticket.model_dump() == {"id": "5158", "subject": "Order arrived broken", "channel": "mail",
                                         "tags": ["vip", "returns"], "team": "Returns"}
    assert (event.message.role, event.message.public) == ("agent", True)
    assert event.occurred_at == datetime(2026, 11, 20, 10, 4, tzinfo=UTC)


def test_same_comment_by_trigger_and_by_event_is_one_event() -> None:
    by_event = to_event(fixture("zendesk-comment-added.json"), {})
    by_trigger = to_event(fixture("zendesk-trigger.json"), {})
    assert by_event is not None and by_trigger is not None
    assert by_event.event_id == by_trigger.event_id


@pytest.mark.parametrize(("role", "expected"),
                         [("End-user", "customer"), ("Admin", "agent"), ("Agent", "agent")])
def test_trigger_role_from_current_user_role(role: str, expected: str) -> None:
    data = fixture("zendesk-trigger.json")
    data["comment"]["author"]["role"] = role
    event = to_event(data, {})
    assert event is not None and event.message.role == expected


def test_trigger_without_a_comment_is_ignored() -> None:
    data = fixture("zendesk-trigger.json")
    data["comment"]["body"] = ""
    assert to_event(data, {}) is None


def test_trigger_without_comment_id_gets_a_stable_content_id() -> None:
    data = fixture("zendesk-trigger.json")
    data["comment"]["id"] = ""
    first, second = to_event(data, {}), to_event(data, {})
    assert first is not None and second is not None
    assert first.event_id == second.event_id and first.event_id.startswith("zd-5158-h")
    data["comment"]["body"] = "A different reply."
    third = to_event(data, {})
    assert third is not None and third.event_id != first.event_id


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["detail"].pop("id"), "detail.id"),
    (lambda d: d["event"]["comment"].pop("body"), "event.comment.body"),
    (lambda d: d["event"].pop("comment"), "event.comment"),
    (lambda d: d["event"]["comment"].update(is_public="maybe"), "event.comment.is_public"),
    (lambda d: d.update(time="yesterday"), "time"),
    (lambda d: d["detail"].update(tags=[1, 2]), "detail.tags[0]"),
    (lambda d: d["event"]["comment"].update(author={"name": "x"}), "event.comment.author"),
])
def test_malformed_payloads_name_the_field(edit: object, field: str) -> None:
    data = fixture("zendesk-comment-added.json")
    edit(data)  # type: ignore[operator]
    with pytest.raises(PayloadError) as err:
        to_event(json.dumps(data).encode(), {})
    assert [i["field"] for i in err.value.issues] == [field]


@pytest.mark.parametrize("body", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'{"type": 5}'])
def test_bodies_that_are_not_a_zendesk_object_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        to_event(body, {})


def test_signature_computed_independently_is_accepted() -> None:
    body = fixture_bytes("zendesk-comment-added.json")
    verify_zendesk(body, zendesk_signature(body, STAMP), STAMP, SECRET, NOW)
    authenticate(body, {"x-zendesk-webhook-signature": zendesk_signature(body, STAMP),
                        "X-Zendesk-Webhook-Signature-Timestamp": STAMP}, SECRET, NOW)


@pytest.mark.parametrize(("change", "reason"), [
    ({"body": b'{"tampered": true}'}, "does not match"),
    ({"secret": "another-secret"}, "does not match"),
    ({"signature": None}, "missing X-Zendesk-Webhook-Signature"),
    ({"timestamp": None}, "missing X-Zendesk-Webhook-Signature-Timestamp"),
    ({"timestamp": "not a time"}, "not a timestamp"),
    ({"now": NOW + timedelta(seconds=301)}, "tolerance"),
    ({"now": NOW - timedelta(seconds=400)}, "tolerance"),
])
def test_bad_signatures_are_rejected(change: dict[str, object], reason: str) -> None:
    body = fixture_bytes("zendesk-comment-added.json")
    args: dict[str, object] = {"body": body, "signature": zendesk_signature(body, STAMP), "timestamp": STAMP,
                               "secret": SECRET, "now": NOW}
    signed_with = args["secret"]
    args.update(change)
    if "secret" in change:  # signed with the real secret, verified with another
        args["signature"] = zendesk_signature(body, STAMP, str(signed_with))
    with pytest.raises(SignatureError, match=reason):
        verify_zendesk(**args)  # type: ignore[arg-type]


def test_a_stale_but_correctly_signed_request_is_a_replay() -> None:
    body = fixture_bytes("zendesk-comment-added.json")
    old = "2026-11-20T09:00:00Z"
    with pytest.raises(SignatureError, match="replay"):
        verify_zendesk(body, zendesk_signature(body, old), old, SECRET, NOW)


def test_missing_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="APOLOGY_ZENDESK_SIGNING_SECRET"):
        verify_zendesk(b"{}", "x", STAMP, "", NOW)


def test_the_shipped_trigger_template_is_read() -> None:
    body = render_template(EXAMPLES / "zendesk-trigger-body.json", {
        "ticket.id": "5158", "ticket.title": "Order arrived broken", "ticket.tags": "vip returns",
        "ticket.via": "Mail", "ticket.group.name": "Returns", "ticket.requester.id": "8447388090123",
        "ticket.updated_at_with_timestamp": "2026-11-20T10:04Z", "ticket.latest_comment.id": "9876543210",
        "ticket.latest_comment.value": 'Sorry, "this" was\nour fault.',
        "ticket.latest_comment.is_public": "true",
        "ticket.latest_comment.author.id": "8447388090123", "ticket.latest_comment.author.name": "Dana",
        "current_user.role": "End-user",
    })
    event = to_event(body, {})
    assert event is not None
    assert (event.event_id, event.message.role, event.message.body) == (
        "zd-5158-9876543210", "customer", 'Sorry, "this" was\nour fault.')
