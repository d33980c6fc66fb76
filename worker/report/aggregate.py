"""The numbers of a report: replies, signal and finding rates, actions, per agent, team and week.

`ReportBuilder.add` takes one verdict (and what the history says about its reply) at a time and keeps
counters per group plus a bounded list of the worst replies, so a report over millions of verdicts needs
memory only in the number of agents, teams and weeks.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from worker.engine.review import UNREAD_LANGUAGE
from worker.models import SEVERITY_RANK, Finding, Signals, Verdict
from worker.report.outcome import Outcome, OutcomeBuilder, outcome_notes
from worker.report.sources import NO_TEAM, NO_WEEK, ReplyFacts

UNKNOWN_AGENT = "(no agent)"
K = TypeVar("K")


class SignalRate(NamedTuple):
    key: str
    label: str
    test: Callable[[Signals], bool]
    good: bool | None  # whether more of it is better (None: neither), for colouring


SIGNALS: tuple[SignalRate, ...] = (
    SignalRate("generic_apology", "Generic apology", lambda s: s.apology == "generic", False),
    SignalRate("specific_apology", "Specific apology", lambda s: s.apology == "specific", True),
    SignalRate("responsibility", "Responsibility", lambda s: s.apology_stance == "responsibility", None),
    SignalRate("empathy", "Empathy", lambda s: s.empathy, True),
    SignalRate("solution", "Solution", lambda s: s.solution, True),
    SignalRate("prevention", "Prevention", lambda s: s.prevention, True),
    SignalRate("liability_admission", "Admits liability", lambda s: s.liability_admission, False),
    SignalRate("blame", "Blame", lambda s: s.blame, False),
)
SIGNAL_LABELS = {s.key: s.label for s in SIGNALS}


@dataclass(slots=True)
class Tally:
    """Counts of one group of replies (an agent, a team, a week, a team's week, or all)."""

    replies: int = 0
    score_total: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)  # replies on which each rule fired
    actions: Counter[str] = field(default_factory=Counter)

    def add(self, verdict: Verdict) -> None:
        self.replies += 1
        self.score_total += verdict.score
        for s in SIGNALS:
            if s.test(verdict.signals):
                self.signals[s.key] += 1
        self.findings.update({f.rule for f in verdict.findings})
        self.actions[verdict.action] += 1

    def signal_rate(self, key: str) -> float:
        return self.signals[key] / self.replies if self.replies else 0.0

    def finding_rate(self, rule: str) -> float:
        return self.findings[rule] / self.replies if self.replies else 0.0

    def action_rate(self, action: str) -> float:
        return self.actions[action] / self.replies if self.replies else 0.0

    @property
    def mean_score(self) -> float:
        return self.score_total / self.replies if self.replies else 0.0


@dataclass(frozen=True, slots=True)
class Example:
    """One reviewed reply, as the report shows it: where it is, how it scored, what was found."""

    ticket_id: str
    message_id: str
    agent_id: str
    team: str
    week: str
    score: int
    action: str
    incident: str
    frustration: float
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class Report:
    overall: Tally
    agents: dict[str, Tally]
    teams: dict[str, Tally]
    weeks: dict[str, Tally]
    team_weeks: dict[tuple[str, str], Tally]
    rules: tuple[str, ...]  # every rule that fired, most frequent first
    escalation_rules: Counter[str]
    worst: tuple[Example, ...]
    outcome: Outcome | None
    policies: Counter[str]
    unmatched: int  # verdicts whose reply the history does not hold
    notes: tuple[str, ...]

    @property
    def has_history(self) -> bool:
        return self.outcome is not None

    @property
    def dated_weeks(self) -> list[str]:
        return sorted(w for w in self.weeks if w != NO_WEEK)


def severity_key(verdict_findings: tuple[Finding, ...] | list[Finding]) -> int:
    return max((SEVERITY_RANK[f.severity] for f in verdict_findings), default=0)


class ReportBuilder:
    def __init__(self, with_history: bool, worst: int = 12, per_pattern: int = 2) -> None:
        self.overall = Tally()
        self.agents: dict[str, Tally] = {}
        self.teams: dict[str, Tally] = {}
        self.weeks: dict[str, Tally] = {}
        self.team_weeks: dict[tuple[str, str], Tally] = {}
        self.escalation_rules: Counter[str] = Counter()
        self.policies: Counter[str] = Counter()
        self.outcome = OutcomeBuilder() if with_history else None
        self.unmatched = 0
        self.unread: Counter[str] = Counter()  # replies in a language their policy does not read, by language
        self.notes: list[str] = []
        self._worst_n = worst
        self._per_pattern = per_pattern
        self._candidates = worst * 4  # room to skip repeats of one pattern of findings
        self._worst: list[tuple[tuple[int, int, int, int], Example]] = []
        self._seq = 0

    def add(self, verdict: Verdict, facts: ReplyFacts | None) -> None:
        if any(f.rule == UNREAD_LANGUAGE for f in verdict.findings):
            # Its signals are blank, not read: counted apart so no rate counts it as a reply without an apology.
            self.unread[verdict.signals.language or "?"] += 1
            return
        if self.outcome is not None and facts is None:
            self.unmatched += 1
        team = facts.team if facts else NO_TEAM
        week = facts.week if facts else NO_WEEK
        agent = verdict.agent_id or UNKNOWN_AGENT
        for tally in (self.overall, _group(self.agents, agent), _group(self.teams, team),
                      _group(self.weeks, week), _group(self.team_weeks, (team, week))):
            tally.add(verdict)
        if verdict.action == "escalate":
            self.escalation_rules.update({f.rule for f in verdict.findings})
        self.policies[f"{verdict.policy.name} {verdict.policy.version}"] += 1
        if self.outcome is not None and facts is not None:
            self.outcome.add(team, verdict.signals, verdict.context.frustration, facts.frustration_after)
        self._keep_if_worst(verdict, agent, team, week)

    def _keep_if_worst(self, verdict: Verdict, agent: str, team: str, week: str) -> None:
        if not verdict.findings:
            return
        self._seq += 1
        # The heap's smallest entry is the mildest kept example: higher score, lower severity, later.
        rank = (verdict.score, -severity_key(verdict.findings), -len(verdict.findings), self._seq)
        key = (-rank[0], -rank[1], -rank[2], -rank[3])
        if len(self._worst) >= self._candidates and key <= self._worst[0][0]:
            return
        example = Example(verdict.ticket_id, verdict.message_id, agent, team, week, verdict.score,
                          verdict.action, verdict.context.incident, verdict.context.frustration,
                          tuple(verdict.findings))
        if len(self._worst) >= self._candidates:
            heapq.heapreplace(self._worst, (key, example))
        else:
            heapq.heappush(self._worst, (key, example))

    def result(self) -> Report:
        ranked = [e for _, e in sorted(self._worst, key=lambda item: item[0], reverse=True)]
        worst = tuple(_varied(ranked, self._worst_n, self._per_pattern))
        outcome = self.outcome.result() if self.outcome is not None else None
        # Outcome notes first: they bear on the headline, and the terminal shows only the first few notes.
        notes = [*(outcome_notes(outcome) if outcome is not None else []), *self.notes]
        if self.unread:
            languages = ", ".join(f"{lang} {n:,}" for lang, n in self.unread.most_common())
            notes.append(f"{sum(self.unread.values()):,} replies were not read, being in a language their policy "
                         f"does not read ({languages}); every figure here leaves them out.")
        return Report(
            overall=self.overall,
            agents=_by_volume(self.agents), teams=_by_volume(self.teams),
            weeks=dict(sorted(self.weeks.items())), team_weeks=dict(sorted(self.team_weeks.items())),
            rules=tuple(rule for rule, _ in self.overall.findings.most_common()),
            escalation_rules=self.escalation_rules, worst=worst,
            outcome=outcome, policies=self.policies, unmatched=self.unmatched, notes=tuple(notes),
        )


def _varied(ranked: list[Example], n: int, per_pattern: int) -> list[Example]:
    """The n worst, at most per_pattern with the same set of rules while others are left to show."""
    seen: Counter[frozenset[str]] = Counter()
    chosen: list[Example] = []
    for e in ranked:
        pattern = frozenset(f.rule for f in e.findings)
        if seen[pattern] < per_pattern:
            seen[pattern] += 1
            chosen.append(e)
    chosen += [e for e in ranked if e not in chosen][: max(0, n - len(chosen))]
    order = {id(e): i for i, e in enumerate(ranked)}
    return sorted(chosen[:n], key=lambda e: order[id(e)])


def _group(groups: dict[K, Tally], key: K) -> Tally:
    tally = groups.get(key)
    if tally is None:
        tally = groups[key] = Tally()
    return tally


def _by_volume(groups: dict[str, Tally]) -> dict[str, Tally]:
    return dict(sorted(groups.items(), key=lambda kv: (-kv[1].replies, kv[0])))
