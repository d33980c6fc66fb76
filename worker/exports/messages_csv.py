"""A CSV of one message per row, grouped back into tickets in constant memory.

Columns: ticket_id, message_id, role, author_id, created_at, body (required, in any order); subject,
channel, team, tags, format, public, author_name (optional). Ticket fields are taken from the first row
of the ticket that fills them. Headers are matched as exports write them: any case, spaces, hyphens or
camelCase ("Ticket ID", "created-at", "messageId"), and a few names helpdesk exports use for the same
column ("conversation_id", "comment_id", "text", "timestamp", ...: `ALIASES`). Commas, semicolons (Excel
in most of Europe) or tabs separate the columns, whichever the header is written with.

**Rows of one ticket must be contiguous** (as any export sorted or grouped by ticket is): a ticket is
finished when a row of another ticket starts, so only one ticket is ever held. A ticket whose rows come
back after other tickets is reported (when it reappears within the last `RECENT_TICKETS` tickets) and
skipped, because its earlier rows were already handed on. Within a ticket, rows are put in
`created_at` order (stable, so rows without a timestamp keep file order).
"""

from __future__ import annotations

import csv
import itertools
import re
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from worker.history import HistoryLine, describe_validation_error
from worker.models import Author, Message, Ticket, TicketHistory

CSV_REQUIRED = frozenset({"ticket_id", "message_id", "role", "author_id", "created_at", "body"})
MAX_MESSAGES_PER_TICKET = 5000
RECENT_TICKETS = 10_000
_MAX_FIELD = 1_100_000  # Message.body is capped at 1,000,000 characters
_ROLES = {
    "agent": "agent", "admin": "agent", "staff": "agent",
    "customer": "customer", "end-user": "customer", "end_user": "customer", "requester": "customer",
    "user": "customer", "contact": "customer", "lead": "customer", "visitor": "customer", "client": "customer",
    "teammate": "agent", "operator": "agent", "support": "agent", "system": "system", "bot": "system",
}
# Other names exports give the same columns; used only when the canonical name is not in the header.
ALIASES = {
    "conversation_id": "ticket_id", "case_id": "ticket_id", "thread_id": "ticket_id",
    "comment_id": "message_id", "reply_id": "message_id", "part_id": "message_id",
    "author_role": "role", "author_type": "role", "sender_role": "role", "sender_type": "role",
    "sender_id": "author_id", "user_id": "author_id", "agent_id": "author_id",
    "timestamp": "created_at", "created": "created_at", "date": "created_at", "sent_at": "created_at",
    "text": "body", "message": "body", "content": "body", "comment": "body", "html_body": "body",
    "is_public": "public", "author": "author_name", "sender_name": "author_name", "group": "team",
}
_DELIMITERS = (",", ";", "\t")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s\-.]+")
_EPOCH_SECONDS_MAX = 100_000_000_000  # the year 5138: larger epoch numbers are milliseconds
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_TAG_SPLIT = re.compile(r"[,\s]+")


@dataclass(slots=True)
class _Group:
    """The rows of the ticket being read."""

    ticket_id: str
    location: str
    fields: dict[str, str] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    reappeared: bool = False
    overflowed: bool = False


def column_name(raw: str) -> str:
    """A header cell as the canonical column it names: "Ticket ID", "ticketId" and "ticket-id" are ticket_id."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", raw.strip().lstrip("\ufeff")).strip()).lower()


def canonical_header(cells: list[str]) -> list[str]:
    """The header's cells as canonical column names, aliases given their canonical name where it is absent
    (and where only one alias names it, so no column is silently chosen over another)."""
    names = [column_name(c) for c in cells]
    present = set(names)
    wanted: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        target = ALIASES.get(n)
        if target is not None and target not in present:
            wanted.setdefault(target, []).append(i)
    for target, at in wanted.items():
        if len(at) == 1:
            names[at[0]] = target
    return names


def sniff_delimiter(first_line: str) -> str | None:
    """The delimiter whose split of a header line names every required column, or None if none does."""
    for delimiter in _DELIMITERS:
        if delimiter in first_line:
            cells = next(csv.reader([first_line], delimiter=delimiter), [])
            if set(canonical_header(cells)) >= CSV_REQUIRED:
                return delimiter
    return None


def read_messages_csv(lines: Iterator[str], name: str) -> Iterator[HistoryLine]:
    csv.field_size_limit(min(sys.maxsize, _MAX_FIELD))
    first = next(lines, None)
    if first is None:
        return
    reader = csv.reader(itertools.chain([first], lines), delimiter=sniff_delimiter(first) or ",")
    try:
        header = canonical_header(next(reader))
    except StopIteration:
        return
    except csv.Error as exc:
        yield HistoryLine(f"{name}:1", None, f"unreadable CSV header ({exc})")
        return
    missing = CSV_REQUIRED - set(header)
    if missing:
        yield HistoryLine(f"{name}:1", None, f"CSV header lacks column(s) {', '.join(sorted(missing))}; "
                                             f"required: {', '.join(sorted(CSV_REQUIRED))}")
        return
    group: _Group | None = None
    recent: OrderedDict[str, None] = OrderedDict()
    row_start = reader.line_num + 1
    while True:
        location = f"{name}:{row_start}"
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield HistoryLine(location, None, f"unreadable CSV row ({exc})")
            row_start = reader.line_num + 1
            continue
        row_start = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield HistoryLine(location, None, f"{len(row)} columns where the header has {len(header)}")
            continue
        values = dict(zip(header, row, strict=True))
        ticket_id = values["ticket_id"].strip()
        if not ticket_id:
            yield HistoryLine(location, None, "ticket_id is empty")
            continue
        if group is None or group.ticket_id != ticket_id:
            if group is not None:
                yield _finish(group)
                _remember(recent, group.ticket_id)
            group = _Group(ticket_id, location, reappeared=ticket_id in recent)
        try:
            message = _message(values)
        except ValueError as exc:
            yield HistoryLine(location, None, str(exc))
            continue
        if len(group.messages) >= MAX_MESSAGES_PER_TICKET:
            if not group.overflowed:
                group.overflowed = True
                yield HistoryLine(location, None, f"ticket {ticket_id} has more than "
                                                  f"{MAX_MESSAGES_PER_TICKET} messages; the rest are skipped")
            continue
        group.messages.append(message)
        for key in ("subject", "channel", "team", "tags"):
            if values.get(key, "").strip() and key not in group.fields:
                group.fields[key] = values[key].strip()
    if group is not None:
        yield _finish(group)


def _finish(group: _Group) -> HistoryLine:
    if group.reappeared:
        return HistoryLine(group.location, None,
                           f"rows of ticket {group.ticket_id} are not contiguous (it appeared earlier in the "
                           "file); keep one ticket's rows together, e.g. sort by ticket_id then created_at")
    if not group.messages:
        return HistoryLine(group.location, None, f"ticket {group.ticket_id} has no readable message")
    ordered = _in_time_order(group.messages)
    f = group.fields
    try:
        ticket = Ticket(id=group.ticket_id, subject=f.get("subject"), channel=f.get("channel"),
                        team=f.get("team"), tags=[t for t in _TAG_SPLIT.split(f.get("tags", "")) if t])
        return HistoryLine(group.location, TicketHistory(ticket=ticket, messages=ordered))
    except ValidationError as exc:
        return HistoryLine(group.location, None, describe_validation_error(exc))


def _in_time_order(messages: list[Message]) -> list[Message]:
    if all(m.created_at is not None for m in messages):
        try:
            return sorted(messages, key=lambda m: m.created_at)  # type: ignore[arg-type,return-value]
        except TypeError:  # naive and aware timestamps mixed: keep file order
            return messages
    return messages


def _message(values: dict[str, str]) -> Message:
    """One row as a canonical message; ValueError names the column at fault."""
    raw_role = values["role"].strip().lower()
    role = _ROLES.get(raw_role)
    if role is None:
        raise ValueError(f"role {values['role']!r} is not agent, customer or system")
    message_id = values["message_id"].strip()
    if not message_id:
        raise ValueError("message_id is empty")
    data: dict[str, Any] = {"id": message_id, "role": role, "body": values["body"]}
    author_id = values["author_id"].strip()
    if author_id:
        data["author"] = Author(id=author_id, name=values.get("author_name", "").strip() or None)
    created = values["created_at"].strip()
    if created:
        data["created_at"] = _timestamp(created)
    fmt = values.get("format", "").strip().lower()
    if fmt:
        if fmt not in ("text", "html"):
            raise ValueError(f"format {fmt!r} is not text or html")
        data["format"] = fmt
    public = values.get("public", "").strip().lower()
    if public:
        if public not in _TRUE | _FALSE:
            raise ValueError(f"public {public!r} is not true or false")
        data["public"] = public in _TRUE
    try:
        return Message.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


def _timestamp(value: str) -> datetime:
    """ISO 8601, or Unix epoch seconds (milliseconds when too large for seconds), as APIs export them."""
    if value.isdigit():
        number = int(value)
        try:
            return datetime.fromtimestamp(number / 1000 if number > _EPOCH_SECONDS_MAX else number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    else:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"created_at {value!r} is not an ISO 8601 timestamp or Unix epoch seconds")


def _remember(recent: OrderedDict[str, None], ticket_id: str) -> None:
    recent[ticket_id] = None
    if len(recent) > RECENT_TICKETS:
        recent.popitem(last=False)
