"""Compare two verdict sets: action transitions, rules fired and unfired, examples, unmatched replies."""

from __future__ import annotations

from collections import Counter

from tests.support.verdicts import finding, verdict
from worker.models import Verdict
from worker.report._store import PairStore
from worker.report.compare import EXAMPLES_PER_CHANGE, CompareBuilder

BASE = [
    verdict("T1", findings=(finding("generic-apology"),), score=80, action="annotate"),
    verdict("T2", score=100),
    verdict("T3", findings=(finding("liability-admission", "critical", "our fault"),), score=50,
            action="escalate"),
    verdict("T4", findings=(finding("blame"),), score=80, action="annotate"),
    verdict("ONLY-BASE"),
]
OTHER = [
    verdict("T1", policy="empathy-first", findings=(finding("slow-apology"),), score=80, action="annotate"),
    verdict("T2", policy="empathy-first", findings=(finding("missing-apology", "critical", "Hello"),),
            score=50, action="escalate"),
    verdict("T3", policy="empathy-first", score=100),
    verdict("T4", policy="empathy-first", findings=(finding("blame"),), score=80, action="annotate"),
    verdict("ONLY-OTHER", policy="empathy-first"),
]


def compare(base: list[Verdict], other: list[Verdict]) -> CompareBuilder:
    builder = CompareBuilder(PairStore())
    for v in base:
        builder.add_base(v)
    for v in other:
        builder.add_other(v)
    return builder


def test_action_transitions_and_rule_changes_are_counted() -> None:
    builder = compare(BASE, OTHER)
    result = builder.result()
    builder.store.close()
    assert (result.base_label, result.other_label) == ("liability-aware", "empathy-first")
    assert (result.matched, result.only_base, result.only_other) == (4, 1, 1)
    expected = Counter((b.action, o.action) for b in BASE for o in OTHER
                       if (b.ticket_id, b.message_id) == (o.ticket_id, o.message_id))
    assert result.transitions == expected
    assert (result.changed_actions, result.stricter, result.laxer) == (2, 1, 1)
    rules = {r.rule: (r.base, r.other, r.newly_fired, r.unfired) for r in result.rules}
    assert rules == {"generic-apology": (1, 0, 0, 1), "slow-apology": (0, 1, 1, 0),
                     "missing-apology": (0, 1, 1, 0), "liability-admission": (1, 0, 0, 1),
                     "blame": (1, 1, 0, 0)}
    assert result.score_delta == sum(o.score - b.score for b, o in zip(BASE[:4], OTHER[:4], strict=True)) / 4


def test_examples_explain_the_change_and_are_bounded() -> None:
    base = [verdict(f"T{i}") for i in range(EXAMPLES_PER_CHANGE + 4)]
    other = [verdict(f"T{i}", policy="p2", findings=(finding("missing-apology", "critical", "Hello <b>"),),
                     score=50, action="escalate") for i in range(EXAMPLES_PER_CHANGE + 4)]
    builder = compare(base, other)
    result = builder.result()
    builder.store.close()
    kept = result.action_examples["none", "escalate"]
    assert len(kept) == EXAMPLES_PER_CHANGE
    assert kept[0].added == ("missing-apology",) and kept[0].excerpt == "Hello <b>"
    assert len(result.rule_examples["missing-apology"]) == EXAMPLES_PER_CHANGE
    unfired = compare(other, base)
    back = unfired.result()
    unfired.store.close()
    assert back.action_examples["escalate", "none"][0].removed == ("missing-apology",)
    assert back.action_examples["escalate", "none"][0].excerpt == "Hello <b>"
