"""The report's text summary on a terminal: a few rich tables, the page holds the rest."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from worker.report.aggregate import SIGNALS, Report
from worker.report.compare import Comparison
from worker.report.outcome import ALL_TEAMS, STYLE_LABELS, Outcome

_SHOWN_SIGNALS = ("generic_apology", "specific_apology", "empathy", "solution", "blame")
_MAX_ROWS = 15


def print_summary(console: Console, report: Report, comparison: Comparison | None = None) -> None:
    t = report.overall
    console.print(f"[bold]{t.replies:,}[/] replies · average score [bold]{t.mean_score:.0f}[/] · "
                  f"escalated [bold red]{t.actions['escalate']:,}[/] · "
                  f"annotated [yellow]{t.actions['annotate']:,}[/]")
    labels = {s.key: s.label for s in SIGNALS}
    table = Table(title="By team", title_justify="left")
    table.add_column("Team")
    for name in ("Replies", "Score", "Escalated", *(labels[k] for k in _SHOWN_SIGNALS)):
        table.add_column(name, justify="right")
    for team, tally in list(report.teams.items())[:_MAX_ROWS]:
        table.add_row(team, f"{tally.replies:,}", f"{tally.mean_score:.0f}",
                      _pct(tally.action_rate("escalate")),
                      *(_pct(tally.signal_rate(k)) for k in _SHOWN_SIGNALS))
    console.print(table)
    if report.rules:
        rules = Table(title="Findings", title_justify="left")
        rules.add_column("Rule")
        rules.add_column("Replies", justify="right")
        rules.add_column("Rate", justify="right")
        for rule in report.rules[:_MAX_ROWS]:
            rules.add_row(rule, f"{t.findings[rule]:,}", _pct(t.finding_rate(rule)))
        console.print(rules)
    if report.outcome is not None:
        _print_outcome(console, report.outcome)
    if comparison is not None:
        _print_comparison(console, comparison)
    for note in report.notes[:5]:
        console.print(f"[dim]note: {note}[/]")


def _print_outcome(console: Console, outcome: Outcome) -> None:
    table = Table(title="Outcome, all teams: change in the customer's frustration after the reply",
                  title_justify="left")
    for name, justify in (("Style", "left"), ("Answered", "right"), ("Mean change", "right"),
                          ("95% CI", "right"), ("No answer", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for cell in (c for c in outcome.cells if c.team == ALL_TEAMS):
        table.add_row(STYLE_LABELS[cell.style], str(cell.n),
                      f"{cell.mean:+.3f}" if cell.mean is not None else "—",
                      f"{cell.ci[0]:+.3f} … {cell.ci[1]:+.3f}" if cell.ci else "—", str(cell.silent))
    console.print(table)


def _print_comparison(console: Console, c: Comparison) -> None:
    console.print(f"[bold]{c.base_label} → {c.other_label}[/]: action changes on [bold]{c.changed_actions:,}"
                  f"[/] of {c.matched:,} replies ({c.stricter:,} stricter, {c.laxer:,} more lenient)")
    table = Table(title="Rule changes", title_justify="left")
    for name in ("Rule", c.base_label, c.other_label, "Newly fired", "Unfired"):
        table.add_column(name, justify="left" if name == "Rule" else "right")
    for r in c.rules[:_MAX_ROWS]:
        table.add_row(r.rule, f"{r.base:,}", f"{r.other:,}", f"+{r.newly_fired:,}", f"−{r.unfired:,}")
    console.print(table)


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"
