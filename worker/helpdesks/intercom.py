"""Intercom in: conversation webhooks (notification events) to the canonical ticket event.

Intercom posts a `notification_event` whose `topic` names what happened and whose `data.item` is the
conversation: `source` (the opening message) and `conversation_parts` (usually only the newest part or
two, not the whole thread). We take the part the topic is about as the message and everything else the
payload holds, the source first, as its history; the workers' conversation memory supplies the rest.
Times are Unix epoch seconds; bodies are HTML.

Topics handled: conversation.admin.replied and conversation.admin.single.created (a teammate's reply, a
teammate's outbound message), conversation.user.replied and conversation.user.created (the customer),
conversation.admin.noted (an internal note, public false), and conversation.admin.closed, .assigned and
.snoozed when the teammate wrote with it ("reply and close": the words are on the close part). `ping`
(sent from the Developer Hub) and every other topic are ignored (None), as are parts with no text
(attachments only) and our own notes.

Who wrote a part comes from `author.type`: `user`, `lead` and `contact` are the customer, `admin` and
`team` the agent. Bots are **system**: `bot` (Fin and the workflows' Operator) and an `admin` flagged
`from_ai_agent` or `is_ai_answer`, as well as a source that automation sent (`delivered_as` automated,
campaigns_initiated or operator_initiated). DESIGN.md's agent is a person whose reply the policy judges
and a note coaches; a bot's wording is fixed in its settings, not by a note on each conversation, and
Operator's canned prompts ("Give the team a way to reach you") would be judged as if they were replies.
As system, a bot's answer also leaves the customer waiting for a person: the first teammate's reply is
the first reply, and its response time counts from the customer's message.

Env read by the gateway: APOLOGY_INTERCOM_CLIENT_SECRET, the app's client secret (Developer Hub › your app
› Basic information); requests carry X-Hub-Signature = "sha1=" + hex(HMAC-SHA1(secret, body)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.helpdesks._payload import Fields, build_event, decode, header
from worker.helpdesks._signing import check, hmac_hex, require_secret
from worker.models import Role, TicketEvent
from worker.targets.notes import is_own_note

SOURCE = "intercom"
SECRET_ENV = "APOLOGY_INTERCOM_CLIENT_SECRET"
SIGNATURE_HEADER = "X-Hub-Signature"
ADMIN_REPLIED = "conversation.admin.replied"
ADMIN_CREATED = "conversation.admin.single.created"
ADMIN_NOTED = "conversation.admin.noted"
USER_REPLIED = "conversation.user.replied"
USER_CREATED = "conversation.user.created"
# A teammate's "reply and close" (or assign, or snooze) comes under these topics, its words on the close,
# assignment or snoozed part; without words it is a line item, and the notification is ignored.
STATE_TOPICS = {"conversation.admin.closed": "close", "conversation.admin.assigned": "assignment",
                "conversation.admin.snoozed": "snoozed"}
MAX_HISTORY = 50
PARTS = "conversation_parts.conversation_parts"
# Parts that change the conversation's state are messages only when the teammate wrote with them
# ("reply and close"); without a body they are line items, like "assigned to Sam".
_STATE_CHANGES = frozenset({"open", "close", "assignment", "snoozed"})
_CUSTOMERS = frozenset({"user", "lead", "contact"})
_AGENTS = frozenset({"admin", "team"})
_BOTS = frozenset({"bot"})
_AUTOMATED = frozenset({"automated", "campaigns_initiated", "operator_initiated"})
_INITIATED_BY: dict[str, Role] = {"customer_initiated": "customer", "admin_initiated": "agent"}
_CHANNELS = {"conversation": "chat", "phone_call": "phone", "phone_switch": "phone"}
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Said:
    """One message the payload holds: the source or a conversation part, read once."""

    id: str
    role: Role
    public: bool
    body: str
    created_at: datetime | None
    author: dict[str, Any] | None
    is_part: bool  # False for the source, the conversation's opening message
    kind: str = ""  # the part's part_type

    def message(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "format": "html", "body": self.body, "public": self.public,
                "created_at": self.created_at, "author": self.author}

    def ours(self) -> bool:
        return not self.public and is_own_note(self.body)


# Which message each topic is about (the latest that fits), and how to name it when none does.
_WANTED: dict[str, tuple[Callable[[_Said], bool], str]] = {
    ADMIN_REPLIED: (lambda s: s.is_part and s.public and s.role != "customer", "teammate reply"),
    USER_REPLIED: (lambda s: s.is_part and s.public and s.role == "customer", "customer reply"),
    ADMIN_NOTED: (lambda s: s.is_part and not s.public and s.role != "customer", "note"),
    ADMIN_CREATED: (lambda s: not s.is_part, "source"),
    USER_CREATED: (lambda s: not s.is_part, "source"),
}


def to_event(payload: bytes | Mapping[str, Any], headers: Mapping[str, str]) -> TicketEvent | None:
    """The canonical event, None for topics without a new message, PayloadError if malformed."""
    doc = decode(SOURCE, payload)
    topic = doc.opt_text("topic")
    if topic is None:
        raise doc.fail("topic", "missing: Intercom names the notification's topic in it")
    if topic not in _WANTED and topic not in STATE_TOPICS:
        return None
    convo = doc.obj("data").obj("item")
    convo_id = convo.id("id")
    said = _conversation(convo)
    if topic in STATE_TOPICS:
        state = STATE_TOPICS[topic]
        wanted = [s for s in said if s.is_part and s.kind == state and s.role == "agent" and s.body.strip()]
        if not wanted:
            return None  # closed, assigned or snoozed without a word to the customer
        fits, what = _WANTED[ADMIN_REPLIED]
    else:
        fits, what = _WANTED[topic]
        wanted = [s for s in said if fits(s)]
    if not wanted:
        if what == "source":
            raise convo.fail("source", "missing: the conversation's opening message")
        raise convo.fail(PARTS, f"no {what} part in the conversation")
    current = wanted[-1]
    if not current.body.strip() or current.ours():
        return None  # an attachment-only part, or our own note
    earlier = [s for s in said[: said.index(current)] if s.body.strip() and not s.ours()][-MAX_HISTORY:]
    source = convo.opt_obj("source")
    return build_event(
        SOURCE, event_id=f"ic-{convo_id}-{current.id}",
        occurred_at=current.created_at or _time(doc, "created_at"),
        ticket={"id": convo_id,
                "subject": (source.opt_text("subject") if source else None) or convo.opt_text("title"),
                "channel": _channel(source.opt_text("type") if source else None),
                "tags": _tags(convo), "team": convo.opt_id("team_assignee_id")},
        message=current.message(),
        history=[s.message() for s in earlier],
    )


def verify_intercom(body: bytes, signature: str | None, secret: str) -> None:
    """Raise SignatureError unless X-Hub-Signature is `sha1=` + the hex HMAC-SHA1 of the body under `secret`."""
    require_secret(secret, SECRET_ENV)
    check(b"sha1=" + hmac_hex(secret, body, hashlib.sha1), signature.lower() if signature else None,
          SIGNATURE_HEADER)


def authenticate(body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
    verify_intercom(body, header(headers, SIGNATURE_HEADER), secret)


def _conversation(convo: Fields) -> list[_Said]:
    """The source and the spoken parts, in time order; sorted() is stable, so the source leads a tie."""
    said: list[_Said] = []
    source = convo.opt_obj("source")
    if source is not None:
        person = source.opt_obj("author")
        said.append(_Said(id=source.id("id"), role=_source_role(source, person), public=True,
                          body=_body(source), created_at=_time(convo, "created_at"), author=_author(person),
                          is_part=False))
    parts = convo.opt_obj("conversation_parts")
    for part in parts.objs("conversation_parts") if parts is not None else []:
        kind = (part.opt_text("part_type") or "").lower()
        if kind in ("comment", "note") or (kind in _STATE_CHANGES and part.has("body")):
            person = part.opt_obj("author")
            said.append(_Said(id=part.id("id"), role=_role(part, person), public=kind != "note", body=_body(part),
                              created_at=_time(part, "created_at"), author=_author(person), is_part=True,
                              kind=kind))
    return sorted(said, key=lambda s: s.created_at or _EPOCH)


def _role(where: Fields, person: Fields | None) -> Role:
    kind = (person.opt_text("type") or "").lower() if person is not None else ""
    if kind in _CUSTOMERS:
        return "customer"
    if kind in _BOTS:
        return "system"
    if person is not None and kind in _AGENTS:
        return "system" if person.flag("from_ai_agent") or person.flag("is_ai_answer") else "agent"
    if not kind:
        raise where.fail("author.type", "missing: cannot tell a teammate from a customer")
    raise where.fail("author.type", f"expected admin, bot, contact, lead, team or user, got {kind[:40]!r}")


def _source_role(source: Fields, person: Fields | None) -> Role:
    """Automation's messages are the system's whoever signs them; a blank author (Twitter) goes by who began."""
    delivered_as = (source.opt_text("delivered_as") or "").lower()
    if delivered_as in _AUTOMATED:
        return "system"
    if (person is None or not person.has("type")) and delivered_as in _INITIATED_BY:
        return _INITIATED_BY[delivered_as]
    return _role(source, person)


def _body(item: Fields) -> str:
    return item.text("body") if item.has("body") else ""


def _author(person: Fields | None) -> dict[str, Any] | None:
    author_id = person.opt_id("id") if person is not None else None
    if person is None or author_id is None:
        return None
    return {"id": author_id, "name": person.opt_text("name") or person.opt_text("email")}


def _time(item: Fields, key: str) -> datetime | None:
    """Intercom's Unix epoch seconds (a number, or digits in a string); ISO 8601 is read too."""
    value = item.data.get(key)
    if isinstance(value, str) and value.strip().isdecimal():
        try:
            value = int(value)
        except ValueError:  # more digits than Python converts to an int
            raise item.fail(key, "not a timestamp: too many digits") from None
    if isinstance(value, bool):
        raise item.fail(key, "expected Unix epoch seconds, got a boolean")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise item.fail(key, f"not a timestamp: {str(value)[:40]}") from None
    return item.time(key)


def _tags(convo: Fields) -> list[str]:
    """`tags` is a tag list object (`{"type": "tag.list", "tags": [{"name": ...}]}`); a bare list is read too."""
    if isinstance(convo.data.get("tags"), dict):
        return convo.obj("tags").tags("tags")
    return convo.tags("tags")


def _channel(kind: str | None) -> str | None:
    """Intercom's source types by the names policies use: a Messenger `conversation` is a chat."""
    return _CHANNELS.get(kind.lower(), kind.lower()) if kind else None
