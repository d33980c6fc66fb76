"""Intercom adapter: notification events, the topic in the body; the X-Hub-Signature check."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.payloads import fixture, fixture_bytes
from worker.errors import ConfigError, PayloadError, SignatureError
from worker.helpdesks.intercom import MAX_HISTORY, authenticate, to_event, verify_intercom
from worker.targets.notes import NOTE_SIGNATURE

CUSTOMER = {"type": "user", "id": "6657ab3c9e0f1e7a2c8b4567", "name": "Dana Reyes", "email": "dana@example.com"}
SAM = {"type": "admin", "id": "6827951", "name": "Sam Okafor", "email": "sam@acme.example"}
FIN = {"type": "bot", "id": "6827949", "name": "Fin", "email": "operator+q7h2kz9m@intercom.io",
       "from_ai_agent": True, "is_ai_answer": True}
T0 = 1795168800  # the conversation's created_at: 2026-11-20T10:00:00Z


def part(part_id: str, author: dict[str, Any], minutes: int, body: str | None, part_type: str = "comment"
         ) -> dict[str, Any]:
    return {"type": "conversation_part", "id": part_id, "part_type": part_type, "body": body,
            "created_at": T0 + 60 * minutes, "updated_at": T0 + 60 * minutes, "notified_at": T0 + 60 * minutes,
            "assigned_to": None, "author": author, "attachments": [], "external_id": None, "redacted": False}


def notification(topic: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The fixture's conversation under another topic, with these parts (in the order given)."""
    data = fixture("intercom-admin-replied.json")
    data["topic"] = topic
    data["data"]["item"]["conversation_parts"]["conversation_parts"] = parts
    return data


def signature(body: bytes, secret: str) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


# -- topics ----------------------------------------------------------------------------------------------------
def test_admin_reply_with_the_opening_message_as_history() -> None:
    event = to_event(fixture_bytes("intercom-admin-replied.json"), {})
    assert event is not None
    assert event.event_id == "ic-215474343849634-45763812690"
    assert event.ticket.model_dump() == {"id": "215474343849634", "subject": "Blender arrived cracked",
                                         "channel": "email", "tags": ["vip"], "team": "5017690"}
    m = event.message
    assert (m.id, m.role, m.format, m.public) == ("45763812690", "agent", "html", True)
    assert m.body == "<p>Hi Dana,</p><p>Sorry for any inconvenience. I've sent a replacement jug by express.</p>"
    assert m.author is not None and (m.author.id, m.author.name) == ("6827951", "Sam Okafor")
    assert m.created_at == datetime(2026, 11, 20, 11, 4, tzinfo=UTC)  # epoch seconds read as UTC
    assert event.occurred_at == m.created_at
    [source] = event.history
    assert (source.id, source.role, source.public) == ("2193574381", "customer", True)
    assert source.body.startswith("<p>Hi, my blender (order BL-4471) arrived with a cracked jug.")
    assert source.created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # the conversation's created_at


def test_user_created_is_the_opening_message_of_a_messenger_chat() -> None:
    event = to_event(fixture("intercom-user-created.json"), {})
    assert event is not None
    assert event.event_id == "ic-215474343851207-2193580012"
    assert (event.message.role, event.message.id, event.history) == ("customer", "2193580012", [])
    # A blank subject is no subject; Messenger's source type "conversation" is a chat; a lead without a
    # name is named by their email.
    assert (event.ticket.subject, event.ticket.channel, event.ticket.team) == (None, "chat", None)
    assert event.message.author is not None and event.message.author.name == "lee@example.org"


def test_user_reply_takes_the_latest_customer_part_and_orders_the_rest_by_time() -> None:
    parts = [  # as a payload may list them: not in time order
        part("903", SAM, 30, "<p>I've asked the warehouse about your jug.</p>"),
        part("905", CUSTOMER, 50, "<p>Still nothing. I want a refund.</p>"),
        part("901", FIN, 1, "<p>Sorry to hear that! A teammate will be with you shortly.</p>"),
        part("904", SAM, 31, None, part_type="assignment"),  # a line item, not a message
        part("902", CUSTOMER, 5, "<p>Hello?? Anyone there?</p>"),
    ]
    event = to_event(notification("conversation.user.replied", parts), {})
    assert event is not None
    assert (event.event_id, event.message.role) == ("ic-215474343849634-905", "customer")
    assert [(h.id, h.role) for h in event.history] == [
        ("2193574381", "customer"), ("901", "system"), ("902", "customer"), ("903", "agent")]
    assert [h.created_at for h in event.history] == sorted(h.created_at for h in event.history if h.created_at)


def test_admin_reply_picks_the_latest_teammate_part_not_a_later_customer_one() -> None:
    parts = [part("910", SAM, 10, "<p>Looking into it.</p>"), part("911", SAM, 20, "<p>Refunded.</p>"),
             part("912", CUSTOMER, 25, "<p>Thanks</p>")]
    event = to_event(notification("conversation.admin.replied", parts), {})
    assert event is not None and event.message.id == "911"
    assert [h.id for h in event.history] == ["2193574381", "910"]  # nothing after the reply


def test_note_is_private_and_our_own_note_is_ignored_and_left_out_of_history() -> None:
    note = part("920", SAM, 10, "<p>VIP: call her back today.</p>", part_type="note")
    event = to_event(notification("conversation.admin.noted", [note]), {})
    assert event is not None and (event.message.id, event.message.public, event.message.role) == ("920", False, "agent")
    ours = part("921", SAM, 11, f"<p><strong>Apology review</strong></p><p><small>{NOTE_SIGNATURE}</small></p>",
                part_type="note")
    assert to_event(notification("conversation.admin.noted", [note, ours]), {}) is None
    later = to_event(notification("conversation.user.replied",
                                  [note, ours, part("922", CUSTOMER, 12, "<p>Any news?</p>")]), {})
    assert later is not None and [h.id for h in later.history] == ["2193574381", "920"]


def test_outbound_message_from_a_teammate_is_an_agent_message() -> None:
    data = notification("conversation.admin.single.created", [])
    source = data["data"]["item"]["source"]
    source.update(delivered_as="admin_initiated", author=SAM, body="<p>Hi Dana, your order is delayed.</p>",
                  id="2193590001")
    event = to_event(data, {})
    assert event is not None
    assert (event.event_id, event.message.role, event.message.public) == ("ic-215474343849634-2193590001",
                                                                          "agent", True)


def test_fin_and_operator_are_system_not_agents() -> None:
    """Bots reply under conversation.admin.replied too: kept as the system's words, never judged as an agent's."""
    event = to_event(notification("conversation.admin.replied", [part("930", FIN, 1, "<p>Sorry about that!</p>")]), {})
    assert event is not None and event.message.role == "system"
    fin_as_admin = {**SAM, "name": "Fin", "from_ai_agent": True}  # newer API versions: an admin, flagged
    event = to_event(notification("conversation.admin.replied", [part("931", fin_as_admin, 1, "<p>Hi</p>")]), {})
    assert event is not None and event.message.role == "system"
    operator = {"type": "bot", "id": "6827949"}  # Operator's workflow prompts: no name, no flags
    event = to_event(notification("conversation.user.replied",
                                  [part("932", operator, 1, "<p>Give the team a way to reach you:</p>"),
                                   part("933", CUSTOMER, 2, "<p>dana@example.com</p>")]), {})
    assert event is not None and [(h.id, h.role) for h in event.history][1:] == [("932", "system")]


def test_automated_opening_message_is_system_whoever_signs_it() -> None:
    data = notification("conversation.user.replied", [part("940", CUSTOMER, 3, "<p>Yes please</p>")])
    data["data"]["item"]["source"].update(delivered_as="automated", author=SAM, body="<p>Want 20% off?</p>")
    event = to_event(data, {})
    assert event is not None and event.history[0].role == "system"


@pytest.mark.parametrize(("topic", "part_type"), [("conversation.admin.closed", "close"),
                                                   ("conversation.admin.assigned", "assignment"),
                                                   ("conversation.admin.snoozed", "snoozed")])
def test_reply_and_close_comes_under_its_state_topic_and_is_judged(topic: str, part_type: str) -> None:
    """Intercom sends a teammate's "reply and close" (or assign, snooze) under the state's topic, the words on
    the state's part; a bare close under it, or an earlier reply, is no new message."""
    parts = [part("940", SAM, 5, "<p>Earlier reply.</p>"),
             part("950", SAM, 10, "<p>I've refunded you. Closing this now.</p>", part_type=part_type)]
    event = to_event(notification(topic, parts), {})
    assert event is not None and (event.message.id, event.message.role) == ("950", "agent")
    assert event.event_id.endswith("-950") and [m.id for m in event.history][-1] == "940"
    bare = [part("940", SAM, 5, "<p>Earlier reply.</p>"), part("951", SAM, 11, None, part_type=part_type)]
    assert to_event(notification(topic, bare), {}) is None


def test_reply_and_close_is_a_reply_but_a_bare_close_is_not() -> None:
    parts = [part("950", SAM, 10, "<p>I've refunded you. Closing this now.</p>", part_type="close"),
             part("951", SAM, 11, None, part_type="close")]
    event = to_event(notification("conversation.admin.replied", parts), {})
    assert event is not None and (event.message.id, event.message.role) == ("950", "agent")


@pytest.mark.parametrize("body", [None, "", "   "])
def test_attachment_only_parts_are_ignored(body: str | None) -> None:
    data = fixture("intercom-admin-replied.json")
    data["data"]["item"]["conversation_parts"]["conversation_parts"][0]["body"] = body
    assert to_event(data, {}) is None


def test_an_attachment_only_customer_reply_is_not_replaced_by_an_earlier_one() -> None:
    parts = [part("960", CUSTOMER, 5, "<p>Here is the photo</p>"), part("961", CUSTOMER, 6, None)]
    assert to_event(notification("conversation.user.replied", parts), {}) is None


def test_ping_and_other_topics_are_ignored() -> None:
    ping = {"type": "notification_event", "app_id": "q7h2kz9m", "topic": "ping", "id": "notif_ping",
            "data": {"type": "notification_event_data", "item": {"type": "ping", "message": "Hello from Intercom"}},
            "created_at": T0}
    assert to_event(json.dumps(ping).encode(), {}) is None
    for topic in ("conversation.admin.closed", "conversation.admin.assigned", "conversation.operator.replied",
                  "conversation.rating.added"):
        assert to_event(notification(topic, []), {}) is None
    # An ignored topic is not parsed: its item may be anything.
    assert to_event({"topic": "contact.created", "data": {"item": {"type": "contact"}}}, {}) is None


def test_history_keeps_the_latest_messages_only() -> None:
    parts = [part(str(1000 + i), CUSTOMER if i % 2 else SAM, i, f"<p>message {i}</p>") for i in range(80)]
    event = to_event(notification("conversation.user.replied", parts), {})
    assert event is not None and event.message.id == "1079"
    assert len(event.history) == MAX_HISTORY and event.history[-1].id == "1078"


def test_times_as_strings_and_tags_as_a_bare_list() -> None:
    data = fixture("intercom-admin-replied.json")
    item = data["data"]["item"]
    item["conversation_parts"]["conversation_parts"][0]["created_at"] = "1795172640"
    item["created_at"] = "2026-11-20T10:00:00Z"
    item["tags"] = [{"type": "tag", "id": "1", "name": "refund"}, "vip"]
    event = to_event(data, {})
    assert event is not None
    assert event.message.created_at == datetime(2026, 11, 20, 11, 4, tzinfo=UTC)
    assert event.history[0].created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert event.ticket.tags == ["refund", "vip"]


# -- malformed payloads --------------------------------------------------------------------------------------
PART0 = "data.item.conversation_parts.conversation_parts[0]"


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.pop("topic"), "topic"),
    (lambda d: d.update(topic=7), "topic"),
    (lambda d: d.pop("data"), "data"),
    (lambda d: d["data"].update(item=[]), "data.item"),
    (lambda d: d["data"]["item"].pop("id"), "data.item.id"),
    (lambda d: d["data"]["item"]["conversation_parts"].update(conversation_parts={}),
     "data.item.conversation_parts.conversation_parts"),
    (lambda d: d["data"]["item"]["conversation_parts"]["conversation_parts"][0].pop("id"), f"{PART0}.id"),
    (lambda d: d["data"]["item"]["conversation_parts"]["conversation_parts"][0].update(created_at="soon"),
     f"{PART0}.created_at"),
    (lambda d: d["data"]["item"]["conversation_parts"]["conversation_parts"][0].update(created_at=10**30),
     f"{PART0}.created_at"),
    (lambda d: d["data"]["item"]["conversation_parts"]["conversation_parts"][0].update(body=["<p>x</p>"]),
     f"{PART0}.body"),
    (lambda d: d["data"]["item"]["conversation_parts"]["conversation_parts"][0]["author"].pop("type"),
     f"{PART0}.author.type"),
    (lambda d: d["data"]["item"]["conversation_parts"]["conversation_parts"][0]["author"].update(type="robot"),
     f"{PART0}.author.type"),
    (lambda d: d["data"]["item"]["source"].pop("id"), "data.item.source.id"),
    (lambda d: d["data"]["item"]["source"]["author"].update(type="visitor"), "data.item.source.author.type"),
    (lambda d: d["data"]["item"].update(tags=7), "data.item.tags"),
    (lambda d: d["data"]["item"].update(tags={"type": "tag.list", "tags": [{"id": "1", "name": 5}]}),
     "data.item.tags.tags[0]"),
])
def test_malformed_payloads_name_the_field(edit: object, field: str) -> None:
    data = fixture("intercom-admin-replied.json")
    edit(data)  # type: ignore[operator]
    with pytest.raises(PayloadError) as err:
        to_event(json.dumps(data).encode(), {})
    assert err.value.issues[0]["field"] == field


def test_a_topic_without_its_message_names_where_it_should_be() -> None:
    only_customer = notification("conversation.admin.replied", [part("970", CUSTOMER, 2, "<p>Hello?</p>")])
    with pytest.raises(PayloadError, match="no teammate reply part") as err:
        to_event(only_customer, {})
    assert err.value.issues[0]["field"] == "data.item.conversation_parts.conversation_parts"
    no_source = fixture("intercom-user-created.json")
    del no_source["data"]["item"]["source"]
    with pytest.raises(PayloadError) as err:
        to_event(no_source, {})
    assert err.value.issues == [{"field": "data.item.source", "reason": "missing: the conversation's opening message"}]


def test_not_json_names_the_body() -> None:
    with pytest.raises(PayloadError) as err:
        to_event(b"topic=conversation.admin.replied", {})
    assert err.value.issues[0]["field"] == "(body)"


# -- authentication --------------------------------------------------------------------------------------------
def test_signature_is_sha1_equals_hex_hmac_sha1_of_the_raw_body() -> None:
    body = fixture_bytes("intercom-admin-replied.json")
    verify_intercom(body, signature(body, "client-secret"), "client-secret")
    verify_intercom(body, signature(body, "client-secret").upper(), "client-secret")  # hex in either case
    authenticate(body, {"x-hub-signature": signature(body, "client-secret")}, "client-secret",
                 datetime(2026, 11, 20, tzinfo=UTC))


@pytest.mark.parametrize(("given", "reason"), [
    (lambda body: signature(body + b" ", "client-secret"), "does not match"),  # a re-serialised body
    (lambda body: signature(body, "another-app-secret"), "does not match"),
    (lambda body: signature(body, "client-secret").removeprefix("sha1="), "does not match"),
    (lambda body: "sha256=" + hmac.new(b"client-secret", body, hashlib.sha256).hexdigest(), "does not match"),
    (lambda body: None, "missing X-Hub-Signature"),
])
def test_wrong_or_missing_signatures_are_refused(given: Any, reason: str) -> None:
    body = fixture_bytes("intercom-admin-replied.json")
    with pytest.raises(SignatureError, match=reason):
        verify_intercom(body, given(body), "client-secret")


def test_no_client_secret_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="APOLOGY_INTERCOM_CLIENT_SECRET"):
        verify_intercom(b"{}", "sha1=00", "")
