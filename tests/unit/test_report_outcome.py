"""Outcome: the customer's next message after each apology style, with 95% intervals."""

from __future__ import annotations

import math
import statistics

import pytest

from tests.conftest import agent, customer, ticket
from tests.support.verdicts import verdict
from worker.engine import Policy, read_context
from worker.models import TicketHistory
from worker.report.outcome import ALL_TEAMS, MIN_FOR_DIFF, OutcomeBuilder, RunningMean, t975, takeaway
from worker.report.sources import iso_week, reply_facts


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
    assert "specific apology" in takeaway(outcome) and "0.30 less frustrated" in takeaway(outcome)


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
