"""Render a report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

Every piece of text that came from a verdict or a history file (agent and team names, excerpts,
suggestions, rule ids) goes through `html.escape`; the page holds no `<script>` at all, and collapsible
sections use `<details>`, so it opens the same from an email attachment, a file share or offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from worker.report._svg import Interval, Series, bar_list, color, interval_chart, line_chart
from worker.report.aggregate import SIGNALS, Example, Report, Tally
from worker.report.compare import Comparison
from worker.report.outcome import ALL_TEAMS, STYLE_LABELS, STYLES, Outcome, ci_text, outcome_notes, takeaway
from worker.report.sources import NO_WEEK

MAX_AGENTS = 60
MAX_TEAMS_CHARTED = 8
TREND_SIGNALS = (("generic_apology", "Generic apologies"), ("specific_apology", "Specific apologies"),
                 ("blame", "Blame"))
_METHOD = (
    "<b>How to read this.</b> Rates are shares of reviewed replies. Outcome: change = frustration (0–1, as "
    "the engine reads it) of the conversation after the customer's next message minus before the reply; a "
    "customer's next message answers the latest agent reply before it. 95% intervals of a mean use "
    "Student's t (the normal approximation from 30 replies on); differences from \"no apology\" use "
    "Welch's standard error with the normal 1.96, from 5 replies per style on. Styles are associations, "
    "not causes: agents apologise more when things went worse."
)
_SEVERITY_CLASS = {"info": "sev-info", "warning": "sev-warning", "critical": "sev-critical"}


def render_html(report: Report, comparison: Comparison | None = None, title: str = "Apology policy report",
                sources: Sequence[str] = ()) -> str:
    body = [
        _header(report, title, sources),
        _kpis(report),
        _trends(report),
        _outcome(report.outcome) if report.outcome is not None else _no_outcome(),
        _groups(report),
        _escalations(report),
        _worst(report.worst),
        _compare(comparison) if comparison is not None else "",
        _footer(report),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><style>{CSS}</style></head>'
            f'<body><main>{"".join(body)}</main></body></html>\n')


# --- sections ------------------------------------------------------------------------------------------

def _header(report: Report, title: str, sources: Sequence[str]) -> str:
    weeks = report.dated_weeks
    span = f"{weeks[0]} to {weeks[-1]}" if len(weeks) > 1 else (weeks[0] if weeks else "undated replies")
    policies = ", ".join(f"{p} ({n:,})" for p, n in report.policies.most_common(3)) or "no verdicts"
    files = ", ".join(sources[:4]) + (f" and {len(sources) - 4} more" if len(sources) > 4 else "")
    return (f'<header><h1>{escape(title)}</h1><p class="sub">{report.overall.replies:,} replies · '
            f'{escape(span)} · {len(report.teams)} teams · {len(report.agents)} agents</p>'
            f'<p class="meta">Policy: {escape(policies)}' + (f" · from {escape(files)}" if files else "")
            + "</p></header>")


def _kpis(report: Report) -> str:
    t = report.overall
    tiles = [
        ("Replies reviewed", f"{t.replies:,}", "", ""),
        ("Average score", f"{t.mean_score:.0f}", "out of 100", ""),
        ("Generic apologies", _pct(t.signal_rate("generic_apology")), "of replies", "bad"),
        ("Specific apologies", _pct(t.signal_rate("specific_apology")), "of replies", "good"),
        ("Blame", _pct(t.signal_rate("blame")), "of replies", "bad"),
        ("Escalated", f"{t.actions['escalate']:,}", f"{_pct(t.action_rate('escalate'))} of replies", "bad"),
    ]
    cells = "".join(f'<div class="kpi {cls}"><div class="kpi-label">{escape(label)}</div>'
                    f'<div class="kpi-value">{escape(value)}</div>'
                    f'<div class="kpi-note">{escape(note)}</div></div>'
                    for label, value, note, cls in tiles)
    return f'<section class="kpis">{cells}</section>'


def _trends(report: Report) -> str:
    weeks = report.dated_weeks
    if len(weeks) < 2:
        return ('<section><h2>Over time</h2><p class="muted">Trends need replies from at least two weeks; '
                'pass the history files with <code>--history</code> to date the replies.</p></section>')
    teams = [t for t in report.teams if any((t, w) in report.team_weeks for w in weeks)][:MAX_TEAMS_CHARTED]
    charts = []
    for key, label in (*TREND_SIGNALS, ("escalate", "Escalations")):
        series = []
        for team in teams:
            points: list[tuple[int, float | None, str]] = []
            for i, week in enumerate(weeks):
                tally = report.team_weeks.get((team, week))
                if tally is None or not tally.replies:
                    points.append((i, None, ""))
                    continue
                rate = tally.action_rate(key) if key == "escalate" else tally.signal_rate(key)
                points.append((i, rate, f"{team}, {week}: {_pct(rate)} of {tally.replies} replies"))
            series.append(Series(team, points))
        chart = line_chart(f"{label} by team, per week", weeks, series)
        charts.append(f'<figure class="card"><figcaption>{escape(label)} <span>share of replies, per team '
                      f'and week</span></figcaption>{chart}</figure>')
    return f'<section><h2>Over time</h2><div class="grid">{"".join(charts)}</div></section>'


def _no_outcome() -> str:
    return ('<section><h2>Outcome</h2><p class="muted">How customers reacted needs the conversations: pass '
            'the history files the verdicts were made from with <code>--history</code>.</p></section>')


def _outcome(outcome: Outcome) -> str:
    intro = ('<p class="lead">How much more or less frustrated the customer\'s <b>next message</b> was '
             'than the message the reply answered, by apology style. Left of zero, customers calmed down. '
             'Bars are 95% confidence intervals; where they cross zero or each other, the data cannot tell '
             'the styles apart yet.</p>')
    if not outcome.answered:
        return (f'<section><h2>Outcome</h2>{intro}<p class="muted">No customer answered a reviewed '
                'reply.</p></section>')
    span = _outcome_span(outcome)
    figures = []
    for team in outcome.teams[: MAX_TEAMS_CHARTED + 1]:
        rows = []
        for k, style in enumerate(STYLES):
            cell = outcome.cell(team, style)
            if cell is None:
                continue
            low, high = cell.ci if cell.ci else (None, None)
            tip = (f"{STYLE_LABELS[style]}: mean change {cell.mean:+.3f}" if cell.mean is not None
                   else STYLE_LABELS[style]) + (f", 95% CI {ci_text(cell)}" if cell.ci else "")
            rows.append(Interval(STYLE_LABELS[style], cell.mean, low, high, f"n={cell.n}", tip, color(k)))
        if rows:
            big = " wide" if team == ALL_TEAMS else ""
            chart = interval_chart(f"Change in frustration after each apology style, {team}", rows, span,
                                   width=1100 if team == ALL_TEAMS else 560)
            figures.append(f'<figure class="card{big}"><figcaption>{escape(team)}</figcaption>{chart}'
                           '</figure>')
    return (f'<section><h2>Outcome: did apologising help?</h2>{intro}'
            f'<p class="takeaway">{escape(takeaway(outcome))}</p>'
            + "".join(f'<p class="muted">{escape(note)}</p>' for note in outcome_notes(outcome)) +
            f'<div class="grid">{"".join(figures)}</div>'
            f'<details><summary>Outcome numbers per team</summary>{_outcome_table(outcome)}</details>'
            '</section>')


def _outcome_span(outcome: Outcome) -> float:
    extreme = max((abs(v) for c in outcome.cells if c.ci for v in c.ci), default=0.1)
    for span in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0):
        if extreme <= span:
            return span
    return 1.0


def _outcome_table(outcome: Outcome) -> str:
    rows = []
    for c in outcome.cells:
        ci = ci_text(c)
        diff = f"{c.vs_none[0]:+.3f} ({c.vs_none[1]:+.3f} to {c.vs_none[2]:+.3f})" if c.vs_none else "—"
        mean = f"{c.mean:+.3f}" if c.mean is not None else "—"
        rows.append(f"<tr><td>{escape(c.team)}</td><td>{escape(STYLE_LABELS[c.style])}</td>"
                    f"<td class=num>{c.n}</td><td class=num>{mean}</td><td class=num>{ci}</td>"
                    f"<td class=num>{diff}</td>"
                    f"<td class=num>{c.silent}</td></tr>")
    return ('<table><thead><tr><th>Team</th><th>Style</th><th class=num>Answered</th>'
            '<th class=num>Mean change</th><th class=num>95% CI</th><th class=num>vs. no apology</th>'
            f'<th class=num>No answer</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _groups(report: Report) -> str:
    teams = _signal_table("Team", report.teams.items())
    agents = list(report.agents.items())
    agent_note = (f'<p class="muted">The {MAX_AGENTS} agents with most replies of {len(agents)}.</p>'
                  if len(agents) > MAX_AGENTS else "")
    weeks = [(w, t) for w, t in report.weeks.items() if w != NO_WEEK] or list(report.weeks.items())
    return (f'<section><h2>Teams</h2><div class="card scroll">{teams}</div>'
            f'<div class="card scroll"><h3>Findings by team</h3>{_findings_table(report)}</div>'
            f'<details class="card"><summary>Agents ({len(agents)})</summary>{agent_note}<div class="scroll">'
            f'{_signal_table("Agent", agents[:MAX_AGENTS])}</div></details>'
            f'<details class="card"><summary>Weeks ({len(weeks)})</summary><div class="scroll">'
            f'{_signal_table("Week", weeks)}</div></details></section>')


def _signal_table(name: str, groups: Iterable[tuple[str, Tally]]) -> str:
    head = "".join(f"<th class=num>{escape(s.label)}</th>" for s in SIGNALS)
    rows = []
    for key, t in groups:
        cells = "".join(_heat(t.signal_rate(s.key), s.good) for s in SIGNALS)
        rows.append(f"<tr><th scope=row>{escape(key)}</th><td class=num>{t.replies:,}</td>"
                    f"<td class=num>{t.mean_score:.0f}</td>{_heat(t.action_rate('escalate'), False)}"
                    f"{_heat(t.action_rate('annotate'), None)}{cells}</tr>")
    return (f"<table><thead><tr><th>{escape(name)}</th><th class=num>Replies</th><th class=num>Score</th>"
            f"<th class=num>Escalated</th><th class=num>Annotated</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _findings_table(report: Report) -> str:
    if not report.rules:
        return '<p class="muted">No rule fired.</p>'
    teams = list(report.teams.items())[:MAX_TEAMS_CHARTED]
    head = "".join(f"<th class=num>{escape(team)}</th>" for team, _ in teams)
    rows = []
    for rule in report.rules:
        cells = "".join(_heat(t.finding_rate(rule), False) for _, t in teams)
        rows.append(f"<tr><th scope=row><code>{escape(rule)}</code></th>"
                    f"<td class=num>{report.overall.findings[rule]:,}</td>"
                    f"{_heat(report.overall.finding_rate(rule), False)}{cells}</tr>")
    return (f"<table><thead><tr><th>Rule</th><th class=num>Replies</th><th class=num>All teams</th>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _escalations(report: Report) -> str:
    n = report.overall.actions["escalate"]
    if not n:
        return '<section><h2>Escalations</h2><p class="muted">No reply was escalated.</p></section>'
    by_team = sorted(((team, t.actions["escalate"]) for team, t in report.teams.items()
                      if t.actions["escalate"]), key=lambda kv: -kv[1])
    return (f'<section><h2>Escalations</h2><div class="grid"><figure class="card"><figcaption>Rules '
            f'behind the {n:,} escalations</figcaption>{bar_list(report.escalation_rules.most_common(10))}'
            '</figure>'
            f'<figure class="card"><figcaption>Escalations by team</figcaption>'
            f'{bar_list(by_team[:10], fill="#0072B2")}</figure></div></section>')


def _worst(examples: Sequence[Example]) -> str:
    if not examples:
        return '<section><h2>Worst replies</h2><p class="muted">No findings: every reply followed the ' \
               'policy.</p></section>'
    cards = []
    for e in examples:
        findings = "".join(
            f'<li><span class="pill {_SEVERITY_CLASS[f.severity]}">{escape(f.severity)}</span> '
            f'<code>{escape(f.rule)}</code> {escape(f.message)}'
            + (f'<blockquote>{escape(f.excerpt)}</blockquote>' if f.excerpt else "")
            + (f'<p class="suggestion"><b>Try:</b> {escape(f.suggestion)}</p>' if f.suggestion else "")
            + "</li>" for f in e.findings)
        cards.append(
            f'<article class="card example"><div class="ex-head"><span class="score">{e.score}</span>'
            f'<span class="pill act-{escape(e.action)}">{escape(e.action)}</span>'
            f'<span>Ticket <b>{escape(e.ticket_id)}</b> · reply {escape(e.message_id)} · agent '
            f'<b>{escape(e.agent_id)}</b> · {escape(e.team)} · {escape(e.week)}</span></div>'
            f'<p class="muted">Customer: {escape(e.incident.replace("_", " "))}, frustration '
            f'{e.frustration:.2f}</p><ul class="findings">{findings}</ul></article>')
    return f'<section><h2>Worst replies</h2><div class="examples">{"".join(cards)}</div></section>'


def _compare(c: Comparison) -> str:
    actions = ("none", "annotate", "escalate")
    head = "".join(f"<th class=num>{escape(a)}</th>" for a in actions)
    matrix = "".join(
        f"<tr><th scope=row>{escape(a)}</th>"
        + "".join(f'<td class="num{" changed" if a != b and c.transitions[a, b] else ""}">'
                  f"{c.transitions[a, b]:,}</td>" for b in actions) + "</tr>"
        for a in actions)
    rules = "".join(
        f"<tr><th scope=row><code>{escape(r.rule)}</code></th><td class=num>{r.base:,}</td>"
        f"<td class=num>{r.other:,}</td><td class=num>+{r.newly_fired:,}</td>"
        f"<td class=num>−{r.unfired:,}</td></tr>"
        for r in c.rules)
    examples = []
    for (a, b), kept in sorted(c.action_examples.items()):
        for e in kept:
            changed = ", ".join([f"+{r}" for r in e.added] + [f"−{r}" for r in e.removed]) or "same rules"
            examples.append(
                f'<article class="card example"><div class="ex-head"><span class="pill act-{escape(a)}">'
                f'{escape(a)}</span> → <span class="pill act-{escape(b)}">{escape(b)}</span><span>Ticket '
                f'<b>{escape(e.ticket_id)}</b> · reply {escape(e.message_id)} · agent {escape(e.agent_id)} · '
                f'score {e.base_score} → {e.other_score}</span></div><p><code>{escape(changed)}</code></p>'
                + (f"<blockquote>{escape(e.excerpt)}</blockquote>" if e.excerpt else "")
                + (f'<p class="suggestion">{escape(e.note)}</p>' if e.note else "") + "</article>")
    unmatched = (f" {c.only_base:,} replies are only in the first set and {c.only_other:,} only in the "
                 "second." if c.only_base or c.only_other else "")
    lead = (f'<p class="lead">Switching from <b>{escape(c.base_label)}</b> to '
            f'<b>{escape(c.other_label)}</b> changes the action on <b>{c.changed_actions:,}</b> of '
            f'{c.matched:,} replies ({c.stricter:,} stricter, {c.laxer:,} more lenient); the score moves by '
            f'{c.score_delta:+.1f} on average.' + unmatched + "</p>")
    return (f'<section><h2>Compare: {escape(c.base_label)} → {escape(c.other_label)}</h2>{lead}'
            f'<div class="grid"><div class="card"><h3>Action: rows {escape(c.base_label)}, columns '
            f'{escape(c.other_label)}</h3><table><thead><tr><th></th>{head}</tr></thead><tbody>{matrix}'
            f'</tbody></table></div><div class="card scroll"><h3>Rules</h3><table><thead><tr><th>Rule</th>'
            f'<th class=num>{escape(c.base_label)}</th><th class=num>{escape(c.other_label)}</th>'
            f'<th class=num>Newly fired</th><th class=num>Unfired</th></tr></thead><tbody>{rules}</tbody>'
            '</table>'
            f'</div></div><h3>Examples of changed actions</h3><div class="examples">{"".join(examples)}</div>'
            '</section>')


def _footer(report: Report) -> str:
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return (f'<footer><p>{_METHOD}</p>'
            + (f'<details><summary>Data notes ({len(report.notes)})</summary><ul>{notes}</ul></details>'
               if notes else "") + "</footer>")


# --- helpers -------------------------------------------------------------------------------------------

def _pct(rate: float) -> str:
    return f"{rate * 100:.0f}%" if rate >= 0.1 or rate == 0 else f"{rate * 100:.1f}%"


def _heat(rate: float, good: bool | None) -> str:
    """A rate cell tinted by how much of it there is: green when more is better, red when worse."""
    if good is None or rate == 0:
        return f"<td class=num>{_pct(rate)}</td>"
    hue = "16,185,129" if good else "239,68,68"
    alpha = 0.08 + 0.5 * min(1.0, rate)
    return f'<td class=num style="background:rgba({hue},{alpha:.2f})">{_pct(rate)}</td>'


CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 48px}
header h1{margin:0;font-size:26px;letter-spacing:-.01em}
.sub{margin:4px 0 0;font-size:15px;color:#374151}.meta{margin:2px 0 0;color:var(--muted);font-size:12px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:0 0 8px}
.lead{max-width:880px;color:#374151}
.takeaway{font-size:16px;font-weight:600;background:#fff;border-left:4px solid var(--accent);
padding:10px 14px;border-radius:6px;max-width:880px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.muted{color:var(--muted)}
.kpis{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin-top:20px}
.kpi{background:var(--card);border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06);
border-top:4px solid var(--accent)}
.kpi.bad{border-top-color:#D55E00}.kpi.good{border-top-color:#009E73}
.kpi-label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.kpi-value{font-size:28px;font-weight:700;margin-top:2px}.kpi-note{font-size:12px;color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:14px}
.card{background:var(--card);border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06);
margin:0 0 14px}
.card.wide{grid-column:1/-1}
figure{margin:0}figcaption{font-weight:600;margin-bottom:6px}
figcaption span{font-weight:400;color:var(--muted);font-size:12px;margin-left:6px}
.chart{width:100%;height:auto;display:block}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 7px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
thead th{white-space:normal;vertical-align:bottom;font-size:11px;text-transform:uppercase;
letter-spacing:.03em;color:var(--muted);font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.changed{background:#fff7ed;font-weight:700}
details summary{cursor:pointer;font-weight:600;padding:4px 0}
details.card summary{margin:-2px 0}
.examples{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px}
.example{margin:0}
.ex-head{display:flex;gap:10px;align-items:center;flex-wrap:wrap;font-size:13px}
.score{font-size:20px;font-weight:800;min-width:38px;text-align:center;background:#111827;color:#fff;
border-radius:8px;padding:2px 6px}
.pill{display:inline-block;border-radius:999px;padding:1px 9px;font-size:11px;font-weight:700;
text-transform:uppercase;letter-spacing:.04em}
.act-none{background:#d1fae5;color:#065f46}.act-annotate{background:#fef3c7;color:#92400e}
.act-escalate{background:#fee2e2;color:#991b1b}
.sev-info{background:#e0f2fe;color:#075985}.sev-warning{background:#fef3c7;color:#92400e}
.sev-critical{background:#fee2e2;color:#991b1b}
ul.findings{list-style:none;padding:0;margin:8px 0 0}ul.findings li{margin:0 0 10px}
blockquote{margin:6px 0;padding:6px 10px;border-left:3px solid #D55E00;background:#fff7ed;color:#7c2d12;
font-style:italic;white-space:pre-wrap}
.suggestion{margin:4px 0 0;padding:6px 10px;background:#ecfdf5;border-left:3px solid #009E73;color:#064e3b}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 5px;
border-radius:4px}
footer{margin-top:36px;color:var(--muted);font-size:12px;max-width:900px}
@media (max-width:900px){.kpis{grid-template-columns:repeat(3,1fr)}.examples,.grid{grid-template-columns:1fr}}
@media print{body{background:#fff}.card,.kpi{box-shadow:none;border:1px solid var(--line)}}
"""
