"""Compare two verdict sets over the same history (say, two presets): what would change, with examples.

The base set is written to a disk-backed store while the report reads it; the other set is then streamed
and each verdict is matched by (ticket id, message id). Counts: action transitions, and per rule how many
replies it fires on in each set, newly fires on, or stops firing on. A few examples are kept per change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from worker.models import ACTION_RANK, Verdict
from worker.report._store import PairStore

EXAMPLES_PER_CHANGE = 3


@dataclass(frozen=True, slots=True)
class ChangeExample:
    ticket_id: str
    message_id: str
    agent_id: str
    base_action: str
    other_action: str
    base_score: int
    other_score: int
    added: tuple[str, ...]  # rules that fire only under the other set
    removed: tuple[str, ...]  # rules that fire only under the base set
    excerpt: str
    note: str  # the finding message (or suggestion) that explains the change


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule: str
    base: int  # replies it fires on in the base set
    other: int
    newly_fired: int
    unfired: int


@dataclass(frozen=True, slots=True)
class Comparison:
    base_label: str
    other_label: str
    matched: int
    only_base: int
    only_other: int
    transitions: Counter[tuple[str, str]]  # (base action, other action) -> replies
    rules: tuple[RuleChange, ...]
    score_delta: float  # mean of other score minus base score over matched replies
    action_examples: dict[tuple[str, str], tuple[ChangeExample, ...]]
    rule_examples: dict[str, tuple[ChangeExample, ...]]

    @property
    def changed_actions(self) -> int:
        return sum(n for (a, b), n in self.transitions.items() if a != b)

    @property
    def stricter(self) -> int:
        return sum(n for (a, b), n in self.transitions.items() if ACTION_RANK[b] > ACTION_RANK[a])

    @property
    def laxer(self) -> int:
        return sum(n for (a, b), n in self.transitions.items() if ACTION_RANK[b] < ACTION_RANK[a])


def _summary(v: Verdict) -> dict[str, Any]:
    return {"a": v.action, "s": v.score, "g": v.agent_id,
            "f": [[f.rule, f.excerpt, f.suggestion or f.message] for f in v.findings]}


@dataclass
class CompareBuilder:
    """Feed it the base verdicts with `add_base`, then the other set with `add_other`."""

    store: PairStore
    base_labels: Counter[str] = field(default_factory=Counter)
    other_labels: Counter[str] = field(default_factory=Counter)
    _base_count: int = 0
    _matched: int = 0
    _only_other: int = 0
    _score_delta: int = 0
    _transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    _base_fired: Counter[str] = field(default_factory=Counter)
    _other_fired: Counter[str] = field(default_factory=Counter)
    _newly: Counter[str] = field(default_factory=Counter)
    _unfired: Counter[str] = field(default_factory=Counter)
    _action_examples: dict[tuple[str, str], list[ChangeExample]] = field(default_factory=dict)
    _rule_examples: dict[str, list[ChangeExample]] = field(default_factory=dict)

    def add_base(self, verdict: Verdict) -> None:
        self.store.put(verdict.ticket_id, verdict.message_id, _summary(verdict))
        self.base_labels[verdict.policy.name] += 1

    def add_other(self, verdict: Verdict) -> None:
        self.other_labels[verdict.policy.name] += 1
        base = self.store.get(verdict.ticket_id, verdict.message_id)
        if base is None:
            self._only_other += 1
            return
        self._matched += 1
        self._score_delta += verdict.score - base["s"]
        self._transitions[base["a"], verdict.action] += 1
        base_rules = {r for r, _, _ in base["f"]}
        other_rules = {f.rule for f in verdict.findings}
        self._base_fired.update(base_rules)
        self._other_fired.update(other_rules)
        added, removed = other_rules - base_rules, base_rules - other_rules
        self._newly.update(added)
        self._unfired.update(removed)
        if base["a"] == verdict.action and not added and not removed:
            return
        example = self._example(verdict, base, added, removed)
        if base["a"] != verdict.action:
            _keep(self._action_examples, (base["a"], verdict.action), example)
        for rule in sorted(added | removed):
            _keep(self._rule_examples, rule, example)

    def _example(self, verdict: Verdict, base: dict[str, Any], added: set[str],
                 removed: set[str]) -> ChangeExample:
        other_findings = [(f.rule, f.excerpt, f.suggestion or f.message) for f in verdict.findings]
        explaining = [f for f in other_findings if f[0] in added] or [tuple(f) for f in base["f"]
                                                                      if f[0] in removed]
        excerpt, note = (explaining[0][1], explaining[0][2]) if explaining else ("", "")
        return ChangeExample(verdict.ticket_id, verdict.message_id, verdict.agent_id or base["g"] or "",
                             base["a"], verdict.action, base["s"], verdict.score, tuple(sorted(added)),
                             tuple(sorted(removed)), excerpt, note)

    def result(self) -> Comparison:
        self._base_count = len(self.store)
        rules = sorted(set(self._base_fired) | set(self._other_fired),
                       key=lambda r: (-(self._newly[r] + self._unfired[r]), r))
        return Comparison(
            base_label=_label(self.base_labels), other_label=_label(self.other_labels),
            matched=self._matched, only_base=self._base_count - self._matched, only_other=self._only_other,
            transitions=self._transitions,
            rules=tuple(RuleChange(r, self._base_fired[r], self._other_fired[r], self._newly[r],
                                   self._unfired[r]) for r in rules),
            score_delta=self._score_delta / self._matched if self._matched else 0.0,
            action_examples={k: tuple(v) for k, v in self._action_examples.items()},
            rule_examples={k: tuple(v) for k, v in self._rule_examples.items()},
        )


def _keep(examples: dict[Any, list[ChangeExample]], key: Any, example: ChangeExample) -> None:
    kept = examples.setdefault(key, [])
    if len(kept) < EXAMPLES_PER_CHANGE:
        kept.append(example)


def _label(labels: Counter[str]) -> str:
    return " + ".join(name for name, _ in labels.most_common()) or "(empty)"
