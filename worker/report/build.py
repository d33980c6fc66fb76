"""Wire the report's pieces: stream verdicts (and the history, and a second verdict set) into the numbers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from worker.engine import Policy
from worker.exports import ExportFormat
from worker.models import Verdict
from worker.report._store import PairStore
from worker.report.aggregate import Report, ReportBuilder
from worker.report.compare import CompareBuilder, Comparison
from worker.report.sources import HistoryIndex, read_verdicts

MAX_NOTES = 20


@dataclass(frozen=True, slots=True)
class Built:
    report: Report
    comparison: Comparison | None
    unreadable: int  # verdict or history lines skipped


def build_report(verdicts: Sequence[str], *, policy: Policy, histories: Sequence[str] = (),
                 compare: Sequence[str] = (), history_format: ExportFormat | None = None,
                 worst: int = 12) -> Built:
    """One pass over each input; memory is flat in the number of verdicts (joins go through disk)."""
    builder = ReportBuilder(with_history=bool(histories), worst=worst)
    skipped = _Skipped(builder.notes)
    with HistoryIndex() as index, PairStore() as store:
        if histories:
            index.add_files(histories, policy, history_format, max_errors=MAX_NOTES)
            skipped.count += index.unreadable
            builder.notes.extend(f"history {e}" for e in index.errors)
        comparing = CompareBuilder(store) if compare else None
        for verdict in skipped.verdicts(verdicts, "verdict"):
            builder.add(verdict, index.get(verdict.ticket_id, verdict.message_id) if histories else None)
            if comparing is not None:
                comparing.add_base(verdict)
        comparison = None
        if comparing is not None:
            for verdict in skipped.verdicts(compare, "compared verdict"):
                comparing.add_other(verdict)
            comparison = comparing.result()
    if histories and builder.unmatched:
        builder.notes.append(f"{builder.unmatched} verdicts name a reply the history files do not hold; "
                             "they count under (no team) and are left out of the outcome")
    return Built(builder.result(), comparison, skipped.count)


@dataclass(slots=True)
class _Skipped:
    """Counts unreadable lines and notes the first few by file:line."""

    notes: list[str]
    count: int = 0

    def verdicts(self, paths: Sequence[str], kind: str) -> Iterator[Verdict]:
        for path in paths:
            for line in read_verdicts(path):
                if line.verdict is not None:
                    yield line.verdict
                    continue
                self.count += 1
                if len(self.notes) < MAX_NOTES:
                    self.notes.append(f"{kind} {line.location}: skipped: {line.error}")
