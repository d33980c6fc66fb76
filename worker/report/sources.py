"""What a report reads: verdict JSONL files, and the facts a verdict lacks, indexed from the history.

A verdict carries no team, week or customer reaction. `HistoryIndex` streams the history files once and
keeps, per agent reply, only what the report needs (team, ISO week, the frustration after the customer's
next message) in a disk-backed PairStore: memory stays flat however many replies the history holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from worker.engine import Policy, read_context
from worker.engine.review import CustomerCache
from worker.exports import ExportFormat, read_export
from worker.history import describe_validation_error, open_text
from worker.models import TicketHistory, Verdict
from worker.report._store import Closing, PairStore

NO_TEAM = "(no team)"
NO_WEEK = "(no date)"


@dataclass(frozen=True, slots=True)
class VerdictLine:
    location: str  # file:line
    verdict: Verdict | None
    error: str | None = None


def read_verdicts(path: str) -> Iterator[VerdictLine]:
    """Verdicts one per line, as `review --format jsonl` and backfill print them; bad lines are named."""
    name = "<stdin>" if path == "-" else path
    with open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield VerdictLine(f"{name}:{n}", Verdict.model_validate_json(line))
            except ValidationError as exc:
                yield VerdictLine(f"{name}:{n}", None, describe_validation_error(exc))


@dataclass(frozen=True, slots=True)
class ReplyFacts:
    """What the history says about one agent reply, beyond its verdict."""

    team: str
    week: str
    # Frustration of the conversation once the customer answered this reply; None if they never did
    # (or another agent reply came first, which then owns the answer).
    frustration_after: float | None


def iso_week(when: datetime | None) -> str:
    if when is None:
        return NO_WEEK
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def reply_facts(history: TicketHistory, policy: Policy) -> Iterator[tuple[str, ReplyFacts]]:
    """(message id, facts) for every public agent reply of one ticket.

    The customer's next message answers the latest agent reply before it; its frustration is read as the
    engine reads any reply's context (`read_context` over the conversation up to and including it), so
    "after" and the verdict's `context.frustration` ("before") are the same measure.
    """
    team = history.ticket.team or NO_TEAM
    messages = history.messages
    cache: CustomerCache = {}
    replies: list[int] = []
    answer: dict[int, int] = {}  # index of an agent reply -> index of the customer message answering it
    pending: int | None = None
    for i, m in enumerate(messages):
        if m.role == "agent" and m.public:
            pending = i
            replies.append(i)
        elif m.role == "customer" and pending is not None:
            answer[pending] = i
            pending = None
    for i in replies:
        j = answer.get(i)
        after = None
        if j is not None:
            after = read_context(messages[: j + 1], policy, cache, history.ticket.id).frustration
        yield messages[i].id, ReplyFacts(team, iso_week(messages[i].created_at), after)


class HistoryIndex(Closing):
    """(ticket id, message id) -> ReplyFacts for every agent reply of the history, kept on disk."""

    def __init__(self, directory: str | None = None) -> None:
        self._store = PairStore(directory)
        self.replies = 0
        self.unreadable = 0
        self.errors: list[str] = []

    def add_files(self, paths: Iterable[str], policy: Policy, fmt: ExportFormat | None = None,
                  max_errors: int = 50) -> None:
        """Index every reply of the history files; unreadable lines are kept (up to max_errors) to report."""
        for path in paths:
            for line in read_export(path, fmt):
                if line.history is None:
                    self.unreadable += 1
                    if len(self.errors) < max_errors:
                        self.errors.append(f"{line.location}: {line.error}")
                    continue
                tid = line.history.ticket.id
                for mid, facts in reply_facts(line.history, policy):
                    self._store.put(tid, mid, [facts.team, facts.week, facts.frustration_after])
                    self.replies += 1
        self._store.flush()

    def get(self, ticket_id: str, message_id: str) -> ReplyFacts | None:
        row = self._store.get(ticket_id, message_id)
        return None if row is None else ReplyFacts(row[0], row[1], row[2])

    def close(self) -> None:
        self._store.close()
