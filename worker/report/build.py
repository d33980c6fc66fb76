"""Wire the report's pieces: stream verdicts (and the history, and a second verdict set) into the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.engine import Policy
from worker.exports import ExportFormat
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
    unreadable = 0
    with HistoryIndex() as index, PairStore() as store:
        if histories:
            index.add_files(histories, policy, history_format, max_errors=MAX_NOTES)
            unreadable += index.unreadable
            builder.notes.extend(f"history {e}" for e in index.errors)
        comparing = CompareBuilder(store) if compare else None
        for path in verdicts:
            for line in read_verdicts(path):
                if line.verdict is None:
                    unreadable += 1
                    _note(builder.notes, f"verdict {line.location}: skipped: {line.error}")
                    continue
                facts = index.get(line.verdict.ticket_id, line.verdict.message_id) if histories else None
                builder.add(line.verdict, facts)
                if comparing is not None:
                    comparing.add_base(line.verdict)
        comparison = None
        if comparing is not None:
            for path in compare:
                for line in read_verdicts(path):
                    if line.verdict is None:
                        unreadable += 1
                        _note(builder.notes, f"compared verdict {line.location}: skipped: {line.error}")
                        continue
                    comparing.add_other(line.verdict)
            comparison = comparing.result()
    if histories and builder.unmatched:
        builder.notes.append(f"{builder.unmatched} verdicts name a reply the history files do not hold; "
                             "they count under (no team) and are left out of the outcome")
    return Built(builder.result(), comparison, unreadable)


def _note(notes: list[str], text: str) -> None:
    if len(notes) < MAX_NOTES:
        notes.append(text)
