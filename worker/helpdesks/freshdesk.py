"""Freshdesk in: the automation-rule webhook body we ship, to the canonical ticket event.

Freshdesk has no event webhooks: an automation rule ("Ticket updates", event "Reply is sent") triggers a
webhook whose JSON body is ours (config/examples/freshdesk-webhook-body.json). Its `conversation` object
follows Freshdesk's own conversation resource (`id`, `body` HTML, `incoming`, `private`, `user_id`), so a
Freshdesk app or proxy may also post the real resource; placeholders only give the latest public comment,
rendered as "Author Name : <html>", which we unwrap.

Agent or customer, from Freshdesk's fields: `user_id` against the ticket's `requester_id` when both are
present, else `incoming` (true for the customer's messages), else the author's email against the
requester's. Freshdesk signs nothing: the gateway checks a shared token (Basic auth or X-Apology-Token).

Env read by the gateway: APOLOGY_FRESHDESK_INBOUND_TOKEN, the token the rule's webhook sends.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from worker.errors import SignatureError
from worker.helpdesks._payload import Fields, build_event, content_id, decode, header
from worker.helpdesks._signing import require_secret
from worker.models import Role, TicketEvent
from worker.targets.notes import is_own_note

SOURCE = "freshdesk"
SECRET_ENV = "APOLOGY_FRESHDESK_INBOUND_TOKEN"
TOKEN_HEADER = "X-Apology-Token"
WRAPPER = "freshdesk_webhook"  # Freshdesk's "simple" webhook content nests everything under this key
# `{{ticket.latest_public_comment}}` renders as "Sam Agent : <div>…</div>".
_AUTHOR_PREFIX = re.compile(r"^(?P<name>[^<>\n:]{1,120}?) : (?=\s*<)")
_LOOKS_HTML = re.compile(r"<[a-zA-Z][^>]*>")
_SOURCES = {1: "email", 2: "portal", 3: "phone", 7: "chat", 9: "feedback_widget", 10: "outbound_email"}


def to_event(payload: bytes | Mapping[str, Any], headers: Mapping[str, str]) -> TicketEvent | None:
    """The canonical event, None for an empty comment or our own note, PayloadError if malformed."""
    doc = decode(SOURCE, payload)
    if isinstance(doc.data.get(WRAPPER), dict):
        doc = doc.obj(WRAPPER)
    ticket = doc.obj("ticket")
    convo = doc.obj("conversation")
    ticket_id = ticket.id("id")
    body = convo.text("body") if convo.has("body") else (convo.opt_text("body_text") or "")
    user = convo.opt_obj("user")
    name = user.opt_text("name") if user else None
    prefix = _AUTHOR_PREFIX.match(body)
    if prefix:
        name = name or prefix["name"].strip()
        body = body[prefix.end():]
    public = not convo.flag("private", False)
    if not body.strip() or (not public and is_own_note(body)):
        return None
    role = _role(ticket, convo, user)
    author_id = convo.opt_id("user_id") or (user.opt_id("id") or user.opt_text("email") if user else None)
    message_id = convo.opt_id("id") or "h" + content_id(ticket_id, role, body)
    created = convo.time("created_at")
    return build_event(
        SOURCE, event_id=f"fd-{ticket_id}-{message_id}", occurred_at=created,
        ticket={"id": ticket_id, "subject": ticket.opt_text("subject"), "channel": _channel(ticket),
                "tags": ticket.tags("tags"), "team": ticket.opt_text("group") or ticket.opt_id("group_id")},
        message={"id": message_id, "role": role, "body": body, "public": public, "created_at": created,
                 "format": "html" if _LOOKS_HTML.search(body) else "text",
                 "author": {"id": author_id, "name": name} if author_id else None},
    )


def verify_freshdesk(headers: Mapping[str, str], token: str) -> None:
    """Raise SignatureError unless the request carries the shared token.

    Accepted: `X-Apology-Token: <token>`, or Basic auth with the token as password (username & password
    mode) or as username (Freshdesk's API-key mode, password "X").
    """
    require_secret(token, SECRET_ENV)
    given = [header(headers, TOKEN_HEADER) or ""]
    auth = header(headers, "Authorization") or ""
    scheme, _, encoded = auth.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise SignatureError("Authorization header is not valid Basic auth") from None
        given += [user, password]
    expected = token.encode()
    # Compare every candidate (no early exit) so timing says nothing about which one matched.
    ok = [hmac.compare_digest(expected, g.encode("utf-8", "replace")) for g in given if g]
    if not any(ok):
        raise SignatureError(f"missing or wrong token: send {TOKEN_HEADER} or Basic auth")


def authenticate(body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
    verify_freshdesk(headers, secret)


def _role(ticket: Fields, convo: Fields, user: Fields | None) -> Role:
    user_id, requester_id = convo.opt_id("user_id"), ticket.opt_id("requester_id")
    if user_id and requester_id:
        return "customer" if user_id == requester_id else "agent"
    incoming = convo.flag("incoming")
    if incoming is not None:
        return "customer" if incoming else "agent"
    requester = ticket.opt_obj("requester")
    user_email = user.opt_text("email") if user else None
    requester_email = requester.opt_text("email") if requester else None
    if user_email and requester_email:
        return "customer" if user_email.lower() == requester_email.lower() else "agent"
    raise convo.fail("incoming", "missing: cannot tell an agent from a customer (send incoming, or user_id "
                                 "with the ticket's requester_id)")


def _channel(ticket: Fields) -> str | None:
    value = ticket.data.get("source")
    if isinstance(value, int) and not isinstance(value, bool):
        return _SOURCES.get(value, str(value))
    text = ticket.opt_text("source")
    return text.lower().replace(" ", "_") if text else None
