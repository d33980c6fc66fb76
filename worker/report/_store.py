"""A disk-backed map from (ticket id, message id) to a small JSON value, for joins in flat memory.

Reports join millions of verdicts with their history or with another verdict set; a dict of that size
would take hundreds of megabytes. A temporary SQLite table (standard library) keeps memory flat and each
lookup is a primary-key probe. The file is deleted on close.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

_BATCH = 5000


class Closing:
    """`with` support for anything with a close()."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class PairStore(Closing):
    def __init__(self, directory: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="apology-report-", dir=directory)
        self._db = sqlite3.connect(os.path.join(self._dir.name, "store.sqlite"))
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE kv (ticket TEXT, message TEXT, value TEXT, "
                         "PRIMARY KEY (ticket, message)) WITHOUT ROWID")
        self._pending: list[tuple[str, str, str]] = []

    def put(self, ticket_id: str, message_id: str, value: Any) -> None:
        self._pending.append((ticket_id, message_id, json.dumps(value, separators=(",", ":"))))
        if len(self._pending) >= _BATCH:
            self.flush()

    def put_many(self, items: Iterable[tuple[str, str, Any]]) -> None:
        for ticket_id, message_id, value in items:
            self.put(ticket_id, message_id, value)

    def flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", self._pending)
            self._db.commit()
            self._pending.clear()

    def get(self, ticket_id: str, message_id: str) -> Any:
        self.flush()
        row = self._db.execute("SELECT value FROM kv WHERE ticket = ? AND message = ?",
                               (ticket_id, message_id)).fetchone()
        return None if row is None else json.loads(row[0])

    def __len__(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()
