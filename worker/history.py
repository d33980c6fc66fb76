"""Ticket history files (JSON Lines, plain or gzip, or `-` for stdin), read one line at a time.

A malformed line is reported as `file:line: reason` and skipped; the rest of the file is still read.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ValidationError

from worker.models import Author, Message, Ticket, TicketHistory


@dataclass(frozen=True, slots=True)
class HistoryLine:
    location: str  # file:line
    history: TicketHistory | None
    error: str | None = None


# utf-8-sig: a byte-order mark (Windows tools and Excel write one) is dropped, not read as part of line 1.
_ENCODING = "utf-8-sig"
_AT_COLUMN = re.compile(r" at line 1 column (\d+)$")


def open_text(path: str) -> IO[str]:
    """Open a history file for reading: `-` is stdin, `.gz` is decompressed on the fly."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=_ENCODING, errors="replace")
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding=_ENCODING, errors="replace")
    return Path(path).open(encoding=_ENCODING, errors="replace")


def parse_history_lines(lines: Iterable[str], name: str) -> Iterator[HistoryLine]:
    """Canonical history lines from any line source, numbered from 1 for `name:line` locations."""
    keys = IgnoredKeys(name)
    for n, line in enumerate(lines, start=1):
        if line.strip():
            keys.see(n, line)
            yield parse_history_line(line, f"{name}:{n}")
    keys.report()


def parse_history_line(line: str, location: str) -> HistoryLine:
    try:
        return HistoryLine(location, TicketHistory.model_validate_json(line.strip()))
    except ValidationError as exc:
        return HistoryLine(location, None, describe_json_error(exc))


def describe_json_error(exc: ValidationError) -> str:
    """What is wrong with one line of JSON, worded alike by every reader (review, backfill, report)."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return f"not valid JSON ({json_reason(str(first.get('ctx', {}).get('error', first['msg'])))})"
    return describe_validation_error(exc)


def json_reason(message: str) -> str:
    """A JSON parser's message about one line, with the column alone ("line 1" of a line says nothing)."""
    return _AT_COLUMN.sub(r" at column \1", message)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(line)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


_CHECKED_LINES = 50  # a file's keys are its exporter's: its first lines show them


def ignored_keys(data: object) -> list[str]:
    """The keys of one history line that the canonical shape does not read, as dotted paths. The models
    ignore unknown keys, as they must for helpdesk payloads, so without this a typo (`created` for
    `created_at`) would silently cost every reply its response time."""
    found: list[str] = []

    def check(obj: object, model: type[BaseModel], where: str) -> None:
        if isinstance(obj, dict):
            found.extend(f"{where}.{key}" if where else str(key) for key in obj if key not in model.model_fields)

    if isinstance(data, dict):
        check(data, TicketHistory, "")
        check(data.get("ticket"), Ticket, "ticket")
        messages = data.get("messages")
        for message in messages if isinstance(messages, list) else ():
            check(message, Message, "messages[]")
            if isinstance(message, dict):
                check(message.get("author"), Author, "messages[].author")
    return list(dict.fromkeys(found))


class IgnoredKeys:
    """Reads a file's first lines for keys the canonical shape ignores and names them once, on stderr, as
    `file: note: ...` beside the `file:line: skipped: ...` lines (a line with only unknown keys still loads)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.first_seen: dict[str, int] = {}  # emptied once named: past the first lines nothing is added

    def see(self, n: int, line: str | bytes) -> None:
        if n > _CHECKED_LINES:
            self.report()  # now, not when a file of millions of lines ends
            return
        try:
            data = json.loads(line)
        except ValueError:
            return  # the line's own error says what is wrong with it
        for key in ignored_keys(data):
            self.first_seen.setdefault(key, n)

    def report(self) -> None:
        if self.first_seen:
            keys = ", ".join(f"{key} (line {n})" for key, n in self.first_seen.items())
            print(f"{self.name}: note: ignored keys the canonical history shape does not have: {keys}",
                  file=sys.stderr)
            self.first_seen.clear()


class Skipped(list[HistoryLine]):
    """Collects unreadable lines and reports each on stderr as `file:line: skipped: reason`."""

    def __call__(self, line: HistoryLine) -> None:
        self.append(line)
        print(f"{line.location}: skipped: {line.error}", file=sys.stderr)
