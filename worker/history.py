"""Ticket history files (JSON Lines, plain or gzip, or `-` for stdin), read one line at a time.

A malformed line is reported as `file:line: reason` and skipped; the rest of the file is still read.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from worker.models import TicketHistory


@dataclass(frozen=True, slots=True)
class HistoryLine:
    location: str  # file:line
    history: TicketHistory | None
    error: str | None = None


def open_text(path: str) -> IO[str]:
    """Open a history file for reading: `-` is stdin, `.gz` is decompressed on the fly."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return Path(path).open(encoding="utf-8", errors="replace")


def read_history(path: str) -> Iterator[HistoryLine]:
    name = "<stdin>" if path == "-" else path
    with open_text(path) as fh:
        yield from parse_history_lines(fh, name)


def parse_history_lines(lines: Iterable[str], name: str) -> Iterator[HistoryLine]:
    """Canonical history lines from any line source, numbered from 1 for `name:line` locations."""
    for n, line in enumerate(lines, start=1):
        if line.strip():
            yield parse_history_line(line, f"{name}:{n}")


def parse_history_line(line: str, location: str) -> HistoryLine:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return HistoryLine(location, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
    try:
        return HistoryLine(location, TicketHistory.model_validate(data))
    except ValidationError as exc:
        return HistoryLine(location, None, describe_validation_error(exc))


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(line)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


class Skipped(list[HistoryLine]):
    """Collects unreadable lines and reports each on stderr as `file:line: skipped: reason`."""

    def __call__(self, line: HistoryLine) -> None:
        self.append(line)
        print(f"{line.location}: skipped: {line.error}", file=sys.stderr)
