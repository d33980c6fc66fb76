"""Help Scout in: conversation webhooks to the canonical ticket event.

Help Scout names the event in the X-HelpScout-Event header and posts the whole conversation object with
its threads (newest first), each thread with `type` (`customer`, `message` for an agent reply, `note`...),
`createdBy.type` (`customer` or `user`) and an HTML `body`. We take the thread the event is about as the
message and the other published threads as its history, so the engine sees the conversation as it was.

Events handled: convo.agent.reply.created, convo.customer.reply.created, convo.created and
convo.note.created; every other event is ignored (None).

Env read by the gateway: APOLOGY_HELPSCOUT_SIGNING_SECRET, the secret typed into the Help Scout webhook;
requests carry X-HelpScout-Signature = base64(HMAC-SHA1(secret, body)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from worker.errors import PayloadError
from worker.helpdesks._payload import Fields, build_event, decode, header
from worker.helpdesks._signing import check, hmac_b64, require_secret
from worker.models import Role, TicketEvent
from worker.targets.notes import is_own_note

SOURCE = "helpscout"
SECRET_ENV = "APOLOGY_HELPSCOUT_SIGNING_SECRET"
EVENT_HEADER = "X-HelpScout-Event"
SIGNATURE_HEADER = "X-HelpScout-Signature"
AGENT_REPLY = "convo.agent.reply.created"
CUSTOMER_REPLY = "convo.customer.reply.created"
CREATED = "convo.created"
NOTE = "convo.note.created"
MAX_HISTORY = 50
# Thread types that are conversation (not line items like "assigned to Sam" or "moved").
_SPOKEN = frozenset({"customer", "message", "reply", "note", "chat", "phone"})
_WANTED: dict[str, frozenset[str]] = {
    AGENT_REPLY: frozenset({"message", "reply", "chat", "phone"}),
    CUSTOMER_REPLY: frozenset({"customer", "chat", "phone"}),
    NOTE: frozenset({"note"}),
    CREATED: _SPOKEN,
}
_EPOCH = datetime.min.replace(tzinfo=UTC)


def to_event(payload: bytes | Mapping[str, Any], headers: Mapping[str, str]) -> TicketEvent | None:
    """The canonical event, None for events without a new message, PayloadError if malformed."""
    event = (header(headers, EVENT_HEADER) or "").strip()
    doc = decode(SOURCE, payload)
    if not event:
        raise PayloadError(SOURCE, [(f"(header {EVENT_HEADER})",
                                     "missing: Help Scout names the event in it")])
    if event not in _WANTED:
        return None
    convo_id = doc.id("id")
    threads = [t for t in _threads(doc) if (t.opt_text("state") or "published") == "published"]
    spoken = [t for t in threads if (t.opt_text("type") or "").lower() in _SPOKEN]
    # sorted() is stable: threads with the same time keep Help Scout's order.
    ordered = sorted(spoken, key=lambda t: t.time("createdAt") or _EPOCH)
    wanted = [t for t in ordered if (t.opt_text("type") or "").lower() in _WANTED[event]
              and (event != CUSTOMER_REPLY or _role(t) == "customer")
              and (event != AGENT_REPLY or _role(t) == "agent")]
    if not wanted:
        raise doc.fail("threads", f"no {event.split('.')[1]} thread in the conversation")
    current = wanted[0] if event == CREATED else wanted[-1]
    message = _message(current)
    if not message["body"].strip() or (not message["public"] and is_own_note(message["body"])):
        return None  # an attachment-only reply, or our own note
    earlier = ordered[: ordered.index(current)][-MAX_HISTORY:]
    return build_event(
        SOURCE, event_id=f"hs-{convo_id}-{message['id']}", occurred_at=message["created_at"],
        ticket={"id": convo_id, "subject": doc.opt_text("subject"), "channel": _lower(doc.opt_text("type")),
                "tags": doc.tags("tags"), "team": _mailbox(doc)},
        message=message,
        history=[_message(t) for t in earlier],
    )


def verify_helpscout(body: bytes, signature: str | None, secret: str) -> None:
    """Raise SignatureError unless X-HelpScout-Signature matches the body under `secret`."""
    require_secret(secret, SECRET_ENV)
    check(hmac_b64(secret, body, hashlib.sha1), signature, SIGNATURE_HEADER)


def authenticate(body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
    verify_helpscout(body, header(headers, SIGNATURE_HEADER), secret)


def _threads(doc: Fields) -> list[Fields]:
    embedded = doc.opt_obj("_embedded")
    if embedded is not None and "threads" in embedded.data:
        return embedded.objs("threads")
    return doc.objs("threads")


def _message(thread: Fields) -> dict[str, Any]:
    kind = (thread.opt_text("type") or "").lower()
    person = _person(thread)
    author_id = person.opt_id("id") if person else None
    return {
        "id": thread.id("id"), "role": _role(thread), "format": "html",
        "body": thread.text("body") if thread.has("body") else "", "public": kind != "note",
        "created_at": thread.time("createdAt"),
        "author": {"id": author_id, "name": _name(person)} if person and author_id else None,
    }


def _role(thread: Fields) -> Role:
    """`createdBy.type` says who wrote it; the thread type decides when it is absent."""
    person = _person(thread)
    kind = (person.opt_text("type") or "").lower() if person else ""
    if kind in ("user", "team"):
        return "agent"
    if kind == "customer":
        return "customer"
    thread_type = (thread.opt_text("type") or "").lower()
    if thread_type == "customer" or thread.flag("createdByCustomer") is True:
        return "customer"
    if thread_type in ("message", "reply", "note"):
        return "agent"
    raise thread.fail("createdBy.type", "missing: cannot tell an agent from a customer")


def _person(thread: Fields) -> Fields | None:
    return thread.opt_obj("createdBy") or thread.opt_obj("author")


def _name(person: Fields | None) -> str | None:
    if person is None:
        return None
    first = person.opt_text("first") or person.opt_text("firstName")
    last = person.opt_text("last") or person.opt_text("lastName")
    return " ".join(p for p in (first, last) if p) or person.opt_text("email")


def _mailbox(doc: Fields) -> str | None:
    mailbox = doc.opt_obj("mailbox")
    if mailbox is not None:
        return mailbox.opt_text("name") or mailbox.opt_id("id")
    return doc.opt_id("mailboxId")


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None
