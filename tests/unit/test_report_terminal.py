"""The report's terminal summary: whole names when piped, and the outcome headline with the table's numbers."""

from __future__ import annotations

import io

from rich.console import Console

from tests.support.verdicts import finding, verdict
from worker.report.aggregate import Report, ReportBuilder
from worker.report.outcome import MIN_FOR_DIFF
from worker.report.sources import ReplyFacts
from worker.report.terminal import print_summary

LONG_TEAM = "returns-and-exchanges-europe"
LONG_RULE = "liability-admission-under-legal-risk"


def _report() -> Report:
    builder = ReportBuilder(with_history=True)
    for i in range(MIN_FOR_DIFF + 3):
        wiggle = 0.01 * (i % 3)
        builder.add(verdict(f"N{i}", frustration=0.5), ReplyFacts(LONG_TEAM, "2026-W47", 0.4 + wiggle))
        builder.add(verdict(f"G{i}", apology="generic", frustration=0.5,
                            findings=(finding(LONG_RULE),), action="annotate", score=80),
                    ReplyFacts(LONG_TEAM, "2026-W47", 0.55 + wiggle))
    return builder.result()


def _printed(terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=80, highlight=False, color_system=None)
    print_summary(console, _report())
    return out.getvalue()


def test_piped_summary_keeps_whole_names() -> None:
    """Piped, rich used its default 80 columns and cut names to "retur…" and "Gener…"."""
    text = _printed(terminal=False)
    assert "…" not in text.replace(" … ", "")  # the only ellipses left are the interval separators
    assert LONG_TEAM in text and LONG_RULE in text
    assert "Generic apology" in text and "Specific apology" in text  # the column headers, on one line
    assert max(len(line) for line in _printed(terminal=True).splitlines()) <= 80  # a terminal is still fitted


def test_summary_prints_the_outcome_headline_and_the_difference_it_quotes() -> None:
    text = " ".join(_printed(terminal=False).split())
    assert "Customers' next message after a generic apology: +0.150 frustration against replies with no apology" in text
    assert "+0.150 (" in text  # the table's "vs. no apology" column holds the same difference


def test_a_comparison_of_verdicts_over_different_histories_says_nothing_matched() -> None:
    """It printed "action changes on 0 of 0 replies" and nothing else."""
    from tests.unit.test_report_compare import compare

    builder = compare([verdict("A1"), verdict("A2")], [verdict("B1", policy="empathy-first")])
    result = builder.result()
    builder.store.close()
    out = io.StringIO()
    print_summary(Console(file=out, width=200, highlight=False, color_system=None), _report(), result)
    said = out.getvalue()
    assert "No reply is in both verdict sets (2 only in the first, 1 only in the second)" in said
