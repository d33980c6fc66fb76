"""Streaming readers for history exports: canonical JSONL, one-message-per-row CSV, Zendesk incremental.

One API for all of them: `read_export(path)` yields `HistoryLine(location, history, error)` one ticket at
a time, in constant memory whatever the file size. A malformed line or row is reported as `file:line`
with a reason and skipped; the rest of the file is still read. Backfill and report both read through it.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePath
from typing import Literal, get_args

from worker.errors import EventError
from worker.exports.messages_csv import read_messages_csv, sniff_delimiter
from worker.exports.zendesk import looks_like_zendesk, read_zendesk
from worker.history import HistoryLine, open_text, parse_history_lines
from worker.models import TicketHistory

ExportFormat = Literal["jsonl", "csv", "zendesk"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)

__all__ = ["FORMATS", "ExportFormat", "HistoryLine", "detect_format", "read_export", "readable_histories"]

_PEEK_LINES = 50


def read_export(path: str, fmt: ExportFormat | None = None) -> Iterator[HistoryLine]:
    """Every ticket of one export file (`-` is stdin, `.gz` is decompressed), detected unless `fmt` says.

    A file that cannot be read (missing, a directory, not gzip, cut short) ends in one `HistoryLine` naming
    the file and why, after the tickets read before the fault, so the other files are still read.
    """
    name = "<stdin>" if path == "-" else path
    try:
        yield from _read_export(path, name, fmt)
    except (OSError, EOFError, zlib.error) as exc:
        yield HistoryLine(name, None, f"cannot read the file: {_file_fault(exc)}")


def _read_export(path: str, name: str, fmt: ExportFormat | None) -> Iterator[HistoryLine]:
    with open_text(path) as fh:
        lines: Iterator[str] = iter(fh)
        if fmt is None:
            head = list(itertools.islice(lines, _PEEK_LINES))
            fmt = detect_format(path, head)
            lines = itertools.chain(head, lines)
        if fmt == "csv":
            yield from read_messages_csv(lines, name)
        elif fmt == "zendesk":
            yield from read_zendesk(lines, name)
        elif fmt == "jsonl":
            yield from parse_history_lines(lines, name)
        else:
            raise EventError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


def _file_fault(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, gzip.BadGzipFile):
        return "not a gzip file (it ends in .gz)"
    if isinstance(exc, EOFError | zlib.error):
        return "the compressed data ends early or is corrupt; the tickets before the fault were read"
    return getattr(exc, "strerror", None) or str(exc)


def readable_histories(paths: Iterable[str],
                       skipped: Callable[[HistoryLine], None]) -> Iterator[TicketHistory]:
    """Every readable ticket of the files in turn, whatever their format; each unreadable line or row is
    handed to `skipped`."""
    for path in paths:
        for line in read_export(path):
            if line.history is None:
                skipped(line)
            else:
                yield line.history


def detect_format(path: str, head: list[str]) -> ExportFormat:
    """The format of a file from its extension, else from its first non-empty line.

    `.csv` is CSV; a JSON line with `ticket` and `messages` is canonical; one shaped like a Zendesk ticket
    (or an incremental export page) is Zendesk. Anything undecidable is treated as canonical JSONL, whose
    reader then names each bad line.
    """
    suffixes = [s.lower() for s in PurePath(path).suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    first = next((line for line in head if line.strip()), "")
    stripped = first.lstrip("\ufeff").lstrip()
    if not stripped.startswith(("{", "[")):
        return "csv" if sniff_delimiter(stripped) is not None else "jsonl"
    if looks_like_zendesk(stripped):
        return "zendesk"
    return "jsonl"

