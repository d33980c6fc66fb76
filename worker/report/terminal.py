"""The report's text summary on a terminal: a few rich tables, the page holds the rest."""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from worker.report.aggregate import SIGNALS, Report
from worker.report.compare import Comparison
from worker.report.outcome import ALL_TEAMS, STYLE_LABELS, Outcome, ci_text, takeaway

_SHOWN_SIGNALS = ("generic_apology", "specific_apology", "empathy", "solution", "blame")
_MAX_ROWS = 15
_UNBOUNDED = 10_000


def print_summary(console: Console, report: Report, comparison: Comparison | None = None) -> None:
    parts = summary(report, comparison)
    if not console.is_terminal:
        _fit(console, parts)
    for part in parts:
        console.print(part)


def _fit(console: Console, parts: list[RenderableType]) -> None:
    """Piped or redirected there is no screen to fit: widen the console to the widest table, so rich does not
    squeeze the tables into its default 80 columns and cut names short ("retur…")."""
    options = console.options.update_width(_UNBOUNDED)
    widest = max((Measurement.get(console, options, p).maximum for p in parts if isinstance(p, Table)),
                 default=0)
    console.width = max(console.width, widest)


def summary(report: Report, comparison: Comparison | None = None) -> list[RenderableType]:
    """The summary as rich renderables, in print order."""
    t = report.overall
    parts: list[RenderableType] = [
        f"[bold]{t.replies:,}[/] replies · average score [bold]{t.mean_score:.0f}[/] · "
        f"escalated [bold red]{t.actions['escalate']:,}[/] · annotated [yellow]{t.actions['annotate']:,}[/]"]
    labels = {s.key: s.label for s in SIGNALS}
    table = Table(title="By team", title_justify="left")
    table.add_column("Team")
    for name in ("Replies", "Score", "Escalated", *(labels[k] for k in _SHOWN_SIGNALS)):
        table.add_column(name, justify="right")
    for team, tally in list(report.teams.items())[:_MAX_ROWS]:
        table.add_row(escape(team), f"{tally.replies:,}", f"{tally.mean_score:.0f}",
                      _pct(tally.action_rate("escalate")),
                      *(_pct(tally.signal_rate(k)) for k in _SHOWN_SIGNALS))
    parts.append(table)
    if report.rules:
        rules = Table(title="Findings", title_justify="left")
        rules.add_column("Rule")
        rules.add_column("Replies", justify="right")
        rules.add_column("Rate", justify="right")
        for rule in report.rules[:_MAX_ROWS]:
            rules.add_row(escape(rule), f"{t.findings[rule]:,}", _pct(t.finding_rate(rule)))
        parts.append(rules)
    if report.outcome is not None:
        parts += _outcome(report.outcome)
    if comparison is not None:
        parts += _comparison(comparison)
    parts += [f"[dim]note: {escape(note)}[/]" for note in report.notes[:5]]
    return parts


def _outcome(outcome: Outcome) -> list[RenderableType]:
    table = Table(title="Outcome, all teams: change in the customer's frustration after the reply",
                  title_justify="left")
    for name, justify in (("Style", "left"), ("Answered", "right"), ("Mean change", "right"),
                          ("95% CI", "right"), ("vs. no apology (95% CI)", "right"), ("No answer", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for cell in (c for c in outcome.cells if c.team == ALL_TEAMS):
        diff = (f"{cell.vs_none[0]:+.3f} ({cell.vs_none[1]:+.3f} … {cell.vs_none[2]:+.3f})" if cell.vs_none
                else "—")
        table.add_row(STYLE_LABELS[cell.style], str(cell.n),
                      f"{cell.mean:+.3f}" if cell.mean is not None else "—", ci_text(cell, " … "), diff,
                      str(cell.silent))
    parts: list[RenderableType] = [table]
    if outcome.answered:
        parts.append(takeaway(outcome))
    return parts


def _comparison(c: Comparison) -> list[RenderableType]:
    head = (f"[bold]{c.base_label} → {c.other_label}[/]: action changes on [bold]{c.changed_actions:,}"
            f"[/] of {c.matched:,} replies ({c.stricter:,} stricter, {c.laxer:,} more lenient)")
    if not c.matched:
        head += (f"\n[bold yellow]No reply is in both verdict sets[/] ({c.only_base:,} only in the first, "
                 f"{c.only_other:,} only in the second): --compare takes verdicts over the same history")
    table = Table(title="Rule changes", title_justify="left")
    for name in ("Rule", c.base_label, c.other_label, "Newly fired", "Unfired"):
        table.add_column(name, justify="left" if name == "Rule" else "right")
    for r in c.rules[:_MAX_ROWS]:
        table.add_row(escape(r.rule), f"{r.base:,}", f"{r.other:,}", f"+{r.newly_fired:,}", f"−{r.unfired:,}")
    return [head, table]


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"
