"""Outcome: how the customer's next message changed after each apology style, per team.

For each agent reply the customer answered, the change is the frustration after their next message minus
the frustration of the message the reply answered (`context.frustration`); both are the engine's
`read_context` frustration, 0 to 1, so a negative change means the customer calmed down. Styles are the
apology kind (none, generic, specific) and, for apologies, the stance (empathy, responsibility).

Each cell keeps a running mean and variance (Welford), so memory does not grow with the replies. The 95%
interval of a mean is mean ± t(0.975, n−1)·s/√n (Student's t, which is the normal approximation from
n = 30 on); the difference from "no apology" uses Welch's standard error with the normal 1.96, and is
given only when both cells hold at least `MIN_FOR_DIFF` replies.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from worker.models import Signals

ALL_TEAMS = "All teams"
KINDS = ("none", "generic", "specific")
STYLES = (*KINDS, "empathy", "responsibility")
STYLE_LABELS = {"none": "No apology", "generic": "Generic apology", "specific": "Specific apology",
                "empathy": "Empathy stance", "responsibility": "Responsibility stance"}
_AFTER = {"generic": "a generic apology", "specific": "a specific apology",  # "after ...", in sentences
          "empathy": "an apology in the empathy stance", "responsibility": "an apology taking responsibility"}
MIN_FOR_DIFF = 5
_Z = 1.96
# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom; from 30 on the normal is close.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    if df < 1:
        return math.inf
    return _T975[df - 1] if df <= len(_T975) else _Z


@dataclass(slots=True)
class RunningMean:
    """Count, mean and variance in one pass (Welford), in constant memory."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    def ci95(self) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        half = t975(self.n - 1) * math.sqrt(self.variance / self.n)
        return self.mean - half, self.mean + half


@dataclass(frozen=True, slots=True)
class OutcomeCell:
    team: str
    style: str
    n: int  # replies the customer answered
    mean: float | None  # mean change in frustration
    ci: tuple[float, float] | None
    silent: int  # replies the customer did not answer
    vs_none: tuple[float, float, float] | None  # difference from "no apology" in the same team, with its CI


@dataclass(frozen=True, slots=True)
class Outcome:
    cells: tuple[OutcomeCell, ...]
    teams: tuple[str, ...]  # ALL_TEAMS first, then by answered replies

    def cell(self, team: str, style: str) -> OutcomeCell | None:
        return next((c for c in self.cells if c.team == team and c.style == style), None)

    @property
    def answered(self) -> int:
        return sum(c.n for c in self.cells if c.team == ALL_TEAMS and c.style in KINDS)


def styles_of(signals: Signals) -> tuple[str, ...]:
    if signals.apology == "none" or signals.apology_stance is None:
        return (signals.apology,)
    return signals.apology, signals.apology_stance


class OutcomeBuilder:
    def __init__(self) -> None:
        self._cells: dict[tuple[str, str], RunningMean] = {}
        self._silent: Counter[tuple[str, str]] = Counter()

    def add(self, team: str, signals: Signals, before: float, after: float | None) -> None:
        for t in (ALL_TEAMS, team):
            for style in styles_of(signals):
                if after is None:
                    self._silent[t, style] += 1
                else:
                    self._cells.setdefault((t, style), RunningMean()).add(after - before)

    def result(self) -> Outcome:
        volume: Counter[str] = Counter()
        for (team, style), stats in self._cells.items():
            if style in KINDS:
                volume[team] += stats.n
        for team, _ in self._silent:
            volume.setdefault(team, 0)  # a team whose customers never answered still gets its row
        teams = [ALL_TEAMS, *sorted((t for t in volume if t != ALL_TEAMS), key=lambda t: (-volume[t], t))]
        cells = []
        for team in teams:
            base = self._cells.get((team, "none"))
            for style in STYLES:
                stats = self._cells.get((team, style), RunningMean())
                silent = self._silent[team, style]
                if stats.n == 0 and silent == 0:
                    continue
                cells.append(OutcomeCell(team, style, stats.n, stats.mean if stats.n else None, stats.ci95(),
                                         silent, _difference(stats, base) if style != "none" else None))
        return Outcome(tuple(cells), tuple(teams))


def _difference(a: RunningMean, b: RunningMean | None) -> tuple[float, float, float] | None:
    if b is None or a.n < MIN_FOR_DIFF or b.n < MIN_FOR_DIFF:
        return None
    diff = a.mean - b.mean
    half = _Z * math.sqrt(a.variance / a.n + b.variance / b.n)
    return diff, diff - half, diff + half


def takeaway(outcome: Outcome, team: str = ALL_TEAMS) -> str:
    """One plain sentence for a lead: which style beats no apology beyond chance, if any.

    Each sentence names both sides of the comparison and quotes the outcome table's own numbers (the
    difference, its interval, both means and both counts), so the headline cannot be read against the table.
    """
    base = outcome.cell(team, "none")
    compared = [c for c in outcome.cells if c.team == team and c.vs_none is not None]
    if base is None or base.mean is None or not compared:
        return (f"Too few answered replies to compare apology styles with no apology (at least "
                f"{MIN_FOR_DIFF} of each are needed).")
    better = [c for c in compared if c.vs_none and c.vs_none[2] < 0]
    worse = [c for c in compared if c.vs_none and c.vs_none[1] > 0]
    parts = []
    if better:
        parts.append(_against_none(min(better, key=lambda c: c.vs_none[0] if c.vs_none else 0.0), base))
    if worse:
        parts.append(_against_none(max(worse, key=lambda c: c.vs_none[0] if c.vs_none else 0.0), base))
    if not parts:
        return "No apology style changed the customer's next message beyond chance compared with no apology."
    return " ".join(parts)


def _against_none(cell: OutcomeCell, base: OutcomeCell) -> str:
    assert cell.vs_none is not None and cell.mean is not None and base.mean is not None
    diff, low, high = cell.vs_none
    mood = "calmer" if diff < 0 else "more frustrated"
    return (f"Customers' next message after {_AFTER[cell.style]}: {diff:+.3f} frustration against replies "
            f"with no apology ({mood}; 95% CI {low:+.3f} to {high:+.3f}; mean change {cell.mean:+.3f} vs "
            f"{base.mean:+.3f}, n={cell.n} vs {base.n}).")


def no_spread(cell: OutcomeCell) -> bool:
    """Every answered reply changed by the same amount: the interval has no width, which real, independent
    conversations almost never give (copies of one conversation do)."""
    return cell.ci is not None and cell.ci[0] == cell.ci[1]


def ci_text(cell: OutcomeCell, sep: str = " to ") -> str:
    if cell.ci is None:
        return "—"
    if no_spread(cell):
        return f"no width: all {cell.n} equal"
    return f"{cell.ci[0]:+.3f}{sep}{cell.ci[1]:+.3f}"


def outcome_notes(outcome: Outcome) -> list[str]:
    """A data note when all-teams cells have intervals of no width, and why that is suspect."""
    flat = [f"after {_AFTER.get(c.style, 'no apology')} ({c.n}, all {c.mean:+.3f})" for c in outcome.cells
            if c.team == ALL_TEAMS and c.mean is not None and c.n >= MIN_FOR_DIFF and no_spread(c)]
    if not flat:
        return []
    return [f"outcome: every answered reply {' and '.join(flat)} changed the customer's frustration by the "
            "same amount, so those 95% intervals have no width; intervals assume independent conversations, "
            "and a history that repeats the same conversations (copies, templates, test data) makes them far "
            "too narrow"]
