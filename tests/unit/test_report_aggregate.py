"""Report numbers: per agent, team and week, computed from the verdicts fed in."""

from __future__ import annotations

from tests.support.verdicts import finding, verdict
from worker.engine.review import UNREAD_LANGUAGE
from worker.report.aggregate import SIGNALS, ReportBuilder
from worker.report.sources import NO_TEAM, ReplyFacts

VERDICTS = [
    (verdict("T1", agent="sam", apology="generic", findings=(finding("generic-apology"),), score=80,
             action="annotate"), ReplyFacts("returns", "2026-W47", None)),
    (verdict("T2", agent="sam", apology="specific", solution=True), ReplyFacts("returns", "2026-W47", None)),
    (verdict("T3", agent="lee", blame=True, findings=(finding("blame", "critical", "you should have"),),
             score=50, action="escalate"), ReplyFacts("returns", "2026-W48", None)),
    (verdict("T4", agent="priya", apology="specific", apology_stance="responsibility", empathy=True,
             solution=True, prevention=True), ReplyFacts("billing", "2026-W48", None)),
    (verdict("T5", agent="priya", apology="generic", findings=(finding("generic-apology"),
             finding("missing-empathy", "info")), score=75, action="annotate"),
     ReplyFacts("billing", "2026-W48", None)),
]


def build() -> ReportBuilder:
    builder = ReportBuilder(with_history=True, worst=3)
    for v, facts in VERDICTS:
        builder.add(v, facts)
    return builder


def test_rates_per_team_agent_and_week_match_the_verdicts() -> None:
    report = build().result()
    assert report.overall.replies == len(VERDICTS)
    for team in ("returns", "billing"):
        group = [v for v, f in VERDICTS if f.team == team]
        tally = report.teams[team]
        assert tally.replies == len(group)
        for s in SIGNALS:
            assert tally.signal_rate(s.key) == sum(s.test(v.signals) for v in group) / len(group)
        assert tally.mean_score == sum(v.score for v in group) / len(group)
    for agent in ("sam", "lee", "priya"):
        group = [v for v, _ in VERDICTS if v.agent_id == agent]
        assert report.agents[agent].finding_rate("generic-apology") == sum(
            any(f.rule == "generic-apology" for f in v.findings) for v in group) / len(group)
    assert {w: t.replies for w, t in report.weeks.items()} == {"2026-W47": 2, "2026-W48": 3}
    assert report.team_weeks["returns", "2026-W48"].actions["escalate"] == 1
    assert list(report.teams) == ["returns", "billing"]  # by volume


def test_rules_escalations_and_policies() -> None:
    report = build().result()
    assert report.rules[0] == "generic-apology"
    assert set(report.rules) == {"generic-apology", "blame", "missing-empathy"}
    assert report.escalation_rules == {"blame": 1}
    assert report.policies == {"liability-aware sha256:test": len(VERDICTS)}


def test_worst_examples_are_lowest_score_then_most_severe() -> None:
    report = build().result()
    assert [e.ticket_id for e in report.worst] == ["T3", "T5", "T1"]
    assert report.worst[0].team == "returns" and report.worst[0].findings[0].excerpt == "you should have"


def test_worst_examples_vary_the_pattern_of_findings() -> None:
    builder = ReportBuilder(with_history=False, worst=3, per_pattern=1)
    for i in range(6):
        builder.add(verdict(f"G{i}", findings=(finding("generic-apology"),), score=60 - i), None)
    builder.add(verdict("B", findings=(finding("blame"),), score=70), None)
    worst = builder.result().worst
    assert [e.ticket_id for e in worst] == ["G5", "G4", "B"]  # one blame example makes it in


def test_without_history_everything_is_undated_and_teamless() -> None:
    builder = ReportBuilder(with_history=False)
    builder.add(verdict("T1"), None)
    report = builder.result()
    assert list(report.teams) == [NO_TEAM] and report.outcome is None and report.unmatched == 0


def test_verdicts_missing_from_the_history_are_counted() -> None:
    builder = ReportBuilder(with_history=True)
    builder.add(verdict("T1"), None)
    assert builder.result().unmatched == 1


def test_replies_in_a_language_the_policy_does_not_read_are_counted_apart() -> None:
    builder = build()
    for n, lang in enumerate(["de", "de", "fr"]):
        builder.add(verdict(f"U{n}", agent="sam", language=lang, findings=(finding(UNREAD_LANGUAGE, "info"),)),
                    ReplyFacts("returns", "2026-W47", None))
    report = builder.result()
    assert report.overall.replies == len(VERDICTS)  # no rate counts them as replies without an apology
    assert report.agents["sam"].replies == sum(1 for v, _ in VERDICTS if v.agent_id == "sam")
    assert UNREAD_LANGUAGE not in report.rules
    assert any("3 replies were not read" in note and "de 2, fr 1" in note for note in report.notes)
