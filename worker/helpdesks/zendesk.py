"""Zendesk in: event webhooks and the trigger body we ship, both to the canonical ticket event.

Two ways to connect a Zendesk account (README, "Connecting a helpdesk"):
- an event webhook subscribed to `zen:event-type:ticket.comment_added`: Zendesk posts its event envelope
  (`type`, `id`, `time`, `detail` = the ticket, `event.comment` = the comment with `author.is_staff`);
- a trigger notifying a webhook with config/examples/zendesk-trigger-body.json, built from placeholders
  (`{{ticket.latest_comment.value}}`, `{{current_user.role}}`...), which renders every value as a string.

Both give the event id `zd-<ticket id>-<comment id>`, so the same comment arriving both ways, or again on
a Zendesk retry, is one event.

Env read by the gateway: APOLOGY_ZENDESK_SIGNING_SECRET, the webhook's signing secret; requests carry
X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, timestamp + body)) and
X-Zendesk-Webhook-Signature-Timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from worker.errors import PayloadError, SignatureError
from worker.helpdesks._payload import Fields, build_event, content_id, decode, header, parse_time
from worker.helpdesks._signing import aware, check, hmac_b64, require_secret
from worker.models import Role, TicketEvent
from worker.targets.notes import is_own_note

SOURCE = "zendesk"
SECRET_ENV = "APOLOGY_ZENDESK_SIGNING_SECRET"
COMMENT_ADDED = "zen:event-type:ticket.comment_added"
EVENT_TYPE_PREFIX = "zen:event-type:"
SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
SYSTEM_AUTHOR_ID = "-1"  # Zendesk's author id for comments made by the system itself
_CUSTOMER_ROLES = frozenset({"end-user", "end_user", "enduser", "end user", "customer"})


def to_event(payload: bytes | Mapping[str, Any], headers: Mapping[str, str]) -> TicketEvent | None:
    """The canonical event, None for Zendesk events that carry no new comment, PayloadError if malformed."""
    doc = decode(SOURCE, payload)
    kind = doc.data.get("type")
    if isinstance(kind, str) and kind.startswith(EVENT_TYPE_PREFIX):
        return _from_event_webhook(doc) if kind == COMMENT_ADDED else None
    if "comment" in doc.data or "ticket" in doc.data:
        return _from_trigger(doc)
    raise PayloadError(SOURCE, [("type", f"expected a Zendesk event ({COMMENT_ADDED}) or the trigger "
                                         "body with `ticket` and `comment` (see zendesk-trigger-body.json)")])


def verify_zendesk(body: bytes, signature: str | None, timestamp: str | None, secret: str, now: datetime,
                   tolerance_s: float = 300) -> None:
    """Raise SignatureError unless the request was signed by Zendesk with `secret` within the tolerance."""
    require_secret(secret, SECRET_ENV)
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    signed_at = parse_time(timestamp)
    if signed_at is None:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a timestamp")
    age = (aware(now) - signed_at).total_seconds()
    if abs(age) > tolerance_s:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {abs(age):.0f}s away from now (tolerance "
                             f"{tolerance_s:.0f}s): a replay, or a clock out of sync")
    check(hmac_b64(secret, timestamp.encode() + body), signature, SIGNATURE_HEADER)


def authenticate(body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
    verify_zendesk(body, header(headers, SIGNATURE_HEADER), header(headers, TIMESTAMP_HEADER), secret, now)


def _from_event_webhook(doc: Fields) -> TicketEvent | None:
    detail = doc.obj("detail")
    comment = doc.obj("event").obj("comment")
    ticket_id = detail.id("id")
    body, fmt = _body(comment)
    public = bool(comment.flag("is_public", True))
    if not body.strip() or (not public and is_own_note(body)):
        return None
    author = comment.opt_obj("author")
    author_id = author.opt_id("id") if author else None
    role = _role(comment, author_id=author_id, requester_id=detail.opt_id("requester_id"),
                 is_staff=author.flag("is_staff") if author else None, role_name=None)
    via = detail.opt_obj("via")
    occurred = doc.time("time")
    return build_event(
        SOURCE, event_id=f"zd-{ticket_id}-{comment.id('id')}", occurred_at=occurred,
        ticket={"id": ticket_id, "subject": detail.opt_text("subject"),
                "channel": _lower(via.opt_text("channel")) if via else None,
                "tags": detail.tags("tags"), "team": detail.opt_id("group_id")},
        message={"id": comment.id("id"), "role": role, "body": body, "format": fmt, "public": public,
                 "created_at": comment.time("created_at") or occurred,
                 "author": _author(author_id, author.opt_text("name") if author else None)},
    )


def _from_trigger(doc: Fields) -> TicketEvent | None:
    ticket = doc.obj("ticket")
    comment = doc.obj("comment")
    ticket_id = ticket.id("id")
    body, fmt = _body(comment)
    public = bool(comment.flag("public", comment.flag("is_public", True)))
    if not body.strip() or (not public and is_own_note(body)):
        return None  # a trigger fired on an update without a comment, or our own note
    author = comment.opt_obj("author")
    author_id = author.opt_id("id") if author else None
    role = _role(comment, author_id=author_id, requester_id=ticket.opt_id("requester_id"),
                 is_staff=author.flag("is_staff") if author else None,
                 role_name=author.opt_text("role") if author else None)
    comment_id = comment.opt_id("id") or "h" + content_id(ticket_id, body)
    occurred = comment.time("created_at") or ticket.time("updated_at")
    return build_event(
        SOURCE, event_id=f"zd-{ticket_id}-{comment_id}", occurred_at=occurred,
        ticket={"id": ticket_id, "subject": ticket.opt_text("subject"),
                "channel": _lower(ticket.opt_text("channel")), "tags": ticket.tags("tags"),
                "team": ticket.opt_text("group") or ticket.opt_id("group_id")},
        message={"id": comment_id, "role": role, "body": body, "format": fmt, "public": public,
                 "created_at": occurred,
                 "author": _author(author_id, author.opt_text("name") if author else None)},
    )


def _body(comment: Fields) -> tuple[str, str]:
    """HTML when Zendesk sent it (the engine maps offsets through the markup), else the plain body."""
    html_body = comment.opt_text("html_body")
    if html_body:
        return comment.text("html_body"), "html"
    if not comment.has("body") and comment.has("value"):
        return comment.text("value"), "text"
    return comment.text("body"), "text"


def _role(comment: Fields, *, author_id: str | None, requester_id: str | None, is_staff: bool | None,
          role_name: str | None) -> Role:
    """Agent or customer from Zendesk's own fields: is_staff, then the user role, then requester vs author."""
    if author_id == SYSTEM_AUTHOR_ID:
        return "system"
    if is_staff is not None:
        return "agent" if is_staff else "customer"
    if role_name:
        return "customer" if role_name.lower() in _CUSTOMER_ROLES else "agent"
    if author_id and requester_id:
        return "customer" if author_id == requester_id else "agent"
    raise comment.fail("author", "cannot tell an agent from a customer: send author.is_staff, author.role "
                                 "or the ticket's requester_id with author.id")


def _author(author_id: str | None, name: str | None) -> dict[str, Any] | None:
    return {"id": author_id, "name": name} if author_id else None


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None
