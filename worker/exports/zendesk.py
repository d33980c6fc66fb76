"""A Zendesk export as JSON Lines: tickets of the incremental ticket export with their comments.

Zendesk's incremental ticket export (`/api/v2/incremental/tickets/cursor.json?include=users,groups`)
returns pages of ticket objects with side-loaded `users` and `groups`; comments come from the ticket
comments endpoint (`/api/v2/tickets/{id}/comments.json`). Each line of the file is one of:

- one ticket with its comments: `{"ticket": {...}, "comments": [...], "users": [...], "groups": [...]}`;
- a ticket object that carries `comments` itself (side-loads optional);
- a whole export page: `{"tickets": [{..., "comments": [...]}, ...], "users": [...], "groups": [...]}`
  (its tickets are located as `file:line#index`).

Who wrote a comment: the ticket's requester is the customer; otherwise the side-loaded user's role
(`end-user` customer, `agent`/`admin` agent); author -1 is Zendesk itself (system); an author the export
says nothing about is the assignee or another agent (in Zendesk only the requester and CCs write as
end-users, and CCs are side-loaded with their role). The team is the ticket's group name (side-loaded),
else `group-<id>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from worker.history import HistoryLine, describe_validation_error, json_reason
from worker.models import Author, Message, Ticket, TicketHistory

_ZENDESK_TICKET_KEYS = ("requester_id", "via", "raw_subject", "submitter_id", "assignee_id")
_SYSTEM_AUTHOR = -1


def looks_like_zendesk(line: str) -> bool:
    """Whether one JSON line is shaped like a Zendesk ticket, ticket-with-comments or export page."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return False
    if not isinstance(data, dict):
        return False
    if "tickets" in data and isinstance(data["tickets"], list):
        return True
    if "comments" in data:
        return True
    ticket = data.get("ticket", data)
    return isinstance(ticket, dict) and any(k in ticket for k in _ZENDESK_TICKET_KEYS)


def read_zendesk(lines: Iterator[str], name: str) -> Iterator[HistoryLine]:
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        location = f"{name}:{n}"
        try:
            data = from_json(line.strip())
        except ValueError as exc:  # the same parser and wording as the canonical reader's
            yield HistoryLine(location, None, f"not valid JSON ({json_reason(str(exc))})")
            continue
        if not isinstance(data, dict):
            yield HistoryLine(location, None, "not a JSON object")
            continue
        users = _index(data.get("users"))
        groups = _index(data.get("groups"))
        if isinstance(data.get("tickets"), list):
            for i, ticket in enumerate(data["tickets"]):
                yield _history(ticket, None, users, groups, f"{location}#{i}")
        else:
            ticket = data.get("ticket", data)
            yield _history(ticket, data.get("comments"), users, groups, location)


def _history(ticket: Any, comments: Any, users: dict[Any, dict[str, Any]], groups: dict[Any, dict[str, Any]],
             location: str) -> HistoryLine:
    if not isinstance(ticket, dict) or "id" not in ticket:
        return HistoryLine(location, None, "no Zendesk ticket object (expected an `id`)")
    if comments is None:
        comments = ticket.get("comments")
    if not isinstance(comments, list) or not comments:
        return HistoryLine(location, None, f"ticket {ticket['id']} has no `comments` list")
    try:
        messages = [_message(c, ticket, users) for c in comments]
        messages.sort(key=lambda m: m.created_at or datetime.min.replace(tzinfo=UTC))
        history = TicketHistory(ticket=_ticket(ticket, groups), messages=messages)
    except ValidationError as exc:
        return HistoryLine(location, None, describe_validation_error(exc))
    except (TypeError, ValueError, KeyError) as exc:
        return HistoryLine(location, None, f"ticket {ticket['id']}: {exc}")
    return HistoryLine(location, history)


def _ticket(ticket: dict[str, Any], groups: dict[Any, dict[str, Any]]) -> Ticket:
    group_id = ticket.get("group_id")
    team = None
    if group_id is not None:
        team = str(groups.get(group_id, {}).get("name") or f"group-{group_id}")
    via = ticket.get("via") if isinstance(ticket.get("via"), dict) else {}
    return Ticket(
        id=str(ticket["id"]), subject=ticket.get("subject") or ticket.get("raw_subject"),
        channel=via.get("channel") if via else None, tags=[str(t) for t in ticket.get("tags") or []],
        team=team,
    )


def _message(comment: Any, ticket: dict[str, Any], users: dict[Any, dict[str, Any]]) -> Message:
    if not isinstance(comment, dict):
        raise TypeError("a comment is not a JSON object")
    author_id = comment.get("author_id")
    if author_id is None:
        raise ValueError(f"comment {comment.get('id', '?')} has no author_id")
    user = users.get(author_id, {})
    html = comment.get("html_body")
    body, fmt = (html, "html") if html else (comment.get("body") or comment.get("plain_body") or "", "text")
    created = comment.get("created_at")
    return Message.model_validate({
        "id": str(comment.get("id", "")),
        "role": _role(author_id, ticket, user),
        "author": Author(id=str(author_id), name=user.get("name")),
        "body": body, "format": fmt, "public": bool(comment.get("public", True)),
        "created_at": created,
    })


def _role(author_id: Any, ticket: dict[str, Any], user: dict[str, Any]) -> str:
    if author_id == _SYSTEM_AUTHOR:
        return "system"
    if author_id == ticket.get("requester_id"):
        return "customer"
    role = user.get("role")
    if role == "end-user":
        return "customer"
    return "agent"


def _index(items: Any) -> dict[Any, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {item["id"]: item for item in items if isinstance(item, dict) and "id" in item}
