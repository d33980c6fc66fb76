"""Outcome: the customer's next message after each apology style, with 95% intervals."""

from __future__ import annotations

import math
import re
import statistics
from html import escape

import pytest

from tests.conftest import agent, customer, ticket
from tests.support.verdicts import verdict
from worker.engine import Policy, read_context
from worker.models import TicketHistory
from worker.report.aggregate import Report, ReportBuilder
from worker.report.html import render_html
from worker.report.outcome import (
    ALL_TEAMS,
    MIN_FOR_DIFF,
    Outcome,
    OutcomeBuilder,
    RunningMean,
    ci_text,
    outcome_notes,
    t975,
    takeaway,
)
from worker.report.sources import ReplyFacts, iso_week, reply_facts


def test_running_mean_and_interval_match_the_textbook() -> None:
    xs = [0.1, -0.3, 0.25, 0.0, -0.05, 0.4, -0.2]
    stats = RunningMean()
    for x in xs:
        stats.add(x)
    assert stats.n == len(xs)
    assert stats.mean == pytest.approx(statistics.fmean(xs))
    assert stats.variance == pytest.approx(statistics.variance(xs))
    half = 2.447 * statistics.stdev(xs) / math.sqrt(len(xs))  # t(0.975, 6)
    low, high = stats.ci95() or (0.0, 0.0)
    assert (low, high) == (pytest.approx(stats.mean - half), pytest.approx(stats.mean + half))
    assert RunningMean(n=1, mean=0.2).ci95() is None
    assert t975(200) == 1.96


def test_each_verdict_counts_for_its_kind_and_stance_in_its_team_and_overall() -> None:
    builder = OutcomeBuilder()
    rows = [("returns", verdict("T1", apology="specific", apology_stance="responsibility"), 0.6, 0.2),
            ("returns", verdict("T2", apology="specific", apology_stance="empathy"), 0.5, 0.4),
            ("billing", verdict("T3", apology="specific", apology_stance="empathy"), 0.3, 0.5),
            ("billing", verdict("T4"), 0.3, None)]
    for team, v, before, after in rows:
        builder.add(team, v.signals, before, after)
    outcome = builder.result()
    specific = outcome.cell(ALL_TEAMS, "specific")
    assert specific is not None
    assert specific.n == 3
    assert specific.mean == pytest.approx(statistics.fmean([0.2 - 0.6, 0.4 - 0.5, 0.5 - 0.3]))
    empathy_returns = outcome.cell("returns", "empathy")
    assert empathy_returns is not None and empathy_returns.mean == pytest.approx(-0.1)
    none = outcome.cell("billing", "none")
    assert none is not None and (none.n, none.silent, none.mean) == (0, 1, None)
    assert outcome.teams[0] == ALL_TEAMS and set(outcome.teams) == {ALL_TEAMS, "returns", "billing"}


def test_difference_from_no_apology_and_the_takeaway() -> None:
    builder = OutcomeBuilder()
    for i in range(MIN_FOR_DIFF + 3):
        wiggle = 0.01 * (i % 3)
        builder.add("t", verdict("N").signals, 0.5, 0.6 + wiggle)  # no apology: +0.1 or so
        builder.add("t", verdict("S", apology="specific").signals, 0.5, 0.3 + wiggle)  # specific: -0.2
    outcome = builder.result()
    cell = outcome.cell(ALL_TEAMS, "specific")
    assert cell is not None and cell.vs_none is not None
    diff, low, high = cell.vs_none
    assert diff == pytest.approx(-0.3)
    assert low < diff < high < 0
    assert takeaway(outcome).startswith("Customers' next message after a specific apology: -0.300 frustration "
                                        "against replies with no apology (calmer;")


def _generic_worse_than_none() -> Outcome:
    builder = OutcomeBuilder()
    for i in range(MIN_FOR_DIFF + 3):
        wiggle = 0.01 * (i % 3)
        builder.add("t", verdict("N").signals, 0.5, 0.4 + wiggle)  # no apology: calmer by about 0.09
        builder.add("t", verdict("G", apology="generic").signals, 0.5, 0.55 + wiggle)  # generic: +0.06
    return builder.result()


def test_takeaway_names_both_sides_and_quotes_the_tables_numbers() -> None:
    """The headline said "After a generic apology, it was 0.02 more frustrated": neither what "it" was nor
    that 0.02 was the difference from no apology, not the generic apology's own mean change."""
    outcome = _generic_worse_than_none()
    generic, none = outcome.cell(ALL_TEAMS, "generic"), outcome.cell(ALL_TEAMS, "none")
    assert generic is not None and none is not None and generic.vs_none is not None
    assert generic.mean is not None and none.mean is not None
    diff, low, high = generic.vs_none
    assert diff == pytest.approx(0.15) and low > 0
    assert takeaway(outcome) == (
        f"Customers' next message after a generic apology: {diff:+.3f} frustration against replies with no "
        f"apology (more frustrated; 95% CI {low:+.3f} to {high:+.3f}; mean change {generic.mean:+.3f} vs "
        f"{none.mean:+.3f}, n={generic.n} vs {none.n}).")
    page = render_html(_report_with(outcome))
    row = re.search(r"<td>All teams</td><td>Generic apology</td>(.*?)</tr>", page)
    assert row is not None and f"{diff:+.3f} ({low:+.3f} to {high:+.3f})" in row.group(1)
    assert f"{generic.mean:+.3f}" in row.group(1)


def test_an_interval_of_no_width_is_named_not_shown_as_a_range() -> None:
    """158 copies of one conversation gave "+0.000 to +0.000", which reads as a bug; say what it is."""
    builder = OutcomeBuilder()
    for i in range(MIN_FOR_DIFF + 3):
        builder.add("t", verdict("N").signals, 0.5, 0.4 + 0.01 * (i % 3))
        builder.add("t", verdict("G", apology="generic").signals, 0.0, 0.0)  # the same conversation, copied
    outcome = builder.result()
    generic = outcome.cell(ALL_TEAMS, "generic")
    assert generic is not None and generic.ci == (0.0, 0.0)
    assert ci_text(generic) == f"no width: all {generic.n} equal"
    none = outcome.cell(ALL_TEAMS, "none")
    assert none is not None and none.ci is not None and ci_text(none) == f"{none.ci[0]:+.3f} to {none.ci[1]:+.3f}"
    [note] = outcome_notes(outcome)
    assert f"after a generic apology ({generic.n}, all +0.000)" in note and "repeats the same conversations" in note
    report = _report_with(outcome)
    assert report.notes[0] == note
    page = render_html(report)
    assert "no width: all 8 equal" in page and "+0.000 to +0.000" not in page
    assert escape(note) in page.split('class="takeaway"')[1].split("<div")[0]  # right under the headline


def _report_with(outcome: Outcome) -> Report:
    builder = ReportBuilder(with_history=True)
    builder.add(verdict("T1"), ReplyFacts("t", "2026-W47", None))
    builder.outcome = _Fixed(outcome)  # type: ignore[assignment]
    return builder.result()


class _Fixed(OutcomeBuilder):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self._outcome = outcome

    def result(self) -> Outcome:
        return self._outcome


def test_takeaway_says_when_there_is_too_little_data() -> None:
    builder = OutcomeBuilder()
    builder.add("t", verdict("N").signals, 0.5, 0.6)
    assert "Too few" in takeaway(builder.result())


def test_reply_facts_read_the_customers_next_message_with_the_engine(policy: Policy) -> None:
    msgs = [customer("My order is three weeks late and nobody answers!!!", "c1", 0),
            agent("Sorry for any inconvenience.", "a1", 10),
            agent("I've sent a replacement by express today.", "a2", 20),
            customer("Thank you so much, that's great.", "c2", 30),
            agent("Glad to help!", "a3", 40)]
    history = TicketHistory(ticket=ticket(team="returns"), messages=msgs)
    facts = dict(reply_facts(history, policy))
    assert set(facts) == {"a1", "a2", "a3"}
    assert facts["a1"].frustration_after is None  # the customer answered a2, the latest reply
    assert facts["a2"].frustration_after == read_context(msgs[:4], policy).frustration
    assert facts["a3"].frustration_after is None  # never answered
    assert facts["a2"].team == "returns" and facts["a2"].week == iso_week(msgs[2].created_at) == "2026-W47"
