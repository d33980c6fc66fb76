"""What people read: the internal note an agent sees on the ticket, and why a supervisor is paged.

Every target renders through here, so Zendesk, Freshdesk, Slack and PagerDuty say the same thing in the
same words. Short and plain on purpose: an agent reads the note between two tickets; a supervisor reads the
escalation on a phone. Nothing here is raw JSON.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from worker.models import SEVERITY_RANK, Finding, Verdict

# The note's last line. Adapters skip private comments that carry it, so our own note coming back as a
# helpdesk "comment added" event is never reviewed (or answered with another note).
NOTE_SIGNATURE = "Reviewed by apology-worker"
MAX_FINDINGS = 5
HIGH_FRUSTRATION = 0.75
_TAG_UNSAFE = re.compile(r"[^a-z0-9_-]+")

_ACTION_LINE = {
    "none": "no action needed",
    "annotate": "for the agent's attention",
    "escalate": "escalated to a supervisor",
}


@dataclass(frozen=True, slots=True)
class NoteItem:
    """One finding as people read it."""

    heading: str  # "Warning · generic-apology"
    message: str
    excerpt: str
    suggestion: str | None


def is_own_note(body: str) -> bool:
    return NOTE_SIGNATURE in body


def short_version(version: str) -> str:
    """`sha256:1f0c9a…`: enough to tell two policy versions apart in a note."""
    prefix, _, digest = version.partition(":")
    if digest and len(digest) > 12:
        return f"{prefix}:{digest[:12]}…"
    return version


def headline(verdict: Verdict) -> str:
    """One line: how many findings, the score, what happens next."""
    n = len(verdict.findings)
    found = "no findings" if n == 0 else f"{n} finding{'s' if n != 1 else ''}"
    return f"Apology review: {found}, score {verdict.score}/100, {_ACTION_LINE[verdict.action]}"


def items(verdict: Verdict) -> list[NoteItem]:
    """The findings worst first, at most MAX_FINDINGS of them."""
    ranked = sorted(verdict.findings, key=lambda f: -SEVERITY_RANK.get(f.severity, 0))
    return [_item(f) for f in ranked[:MAX_FINDINGS]]


def policy_line(verdict: Verdict) -> str:
    return f"{NOTE_SIGNATURE} · policy {verdict.policy.name} ({short_version(verdict.policy.version)})"


def escalation_reasons(verdict: Verdict) -> list[str]:
    """Why a supervisor should look now, most urgent first; never empty for an escalation."""
    ctx, sig = verdict.context, verdict.signals
    reasons: list[str] = []
    said_blame = False
    if ctx.legal_risk:
        legal = "Legal risk: the customer mentions legal action, a lawyer, an injury or a regulator"
        if sig.liability_admission:
            legal += ", and the reply admits fault"
        elif sig.blame:
            legal += ", and the reply blames the customer"
            said_blame = True
        reasons.append(legal)
    elif sig.liability_admission:
        reasons.append("Liability: the reply admits fault in writing")
    if sig.blame and not said_blame:
        reasons.append("The reply argues with or blames the customer")
    if ctx.frustration >= HIGH_FRUSTRATION:
        reasons.append(f"The customer is very frustrated ({ctx.frustration:.2f})")
    reasons += [f"Critical: {f.message}" for f in verdict.findings if f.severity == "critical"]
    if not reasons:
        reasons.append(f"Policy {verdict.policy.name} escalates this reply (score {verdict.score}/100)")
    return _unique(reasons)


def escalation_summary(verdict: Verdict, limit: int = 1024) -> str:
    """One line for a page or a channel: the ticket and the most urgent reasons."""
    text = f"Ticket {verdict.ticket_id}: " + "; ".join(escalation_reasons(verdict)[:3])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def note_text(verdict: Verdict) -> str:
    """The internal note as plain text (for helpdesks and channels without HTML)."""
    lines = [headline(verdict)]
    if verdict.action == "escalate":
        lines.append("Why now: " + "; ".join(escalation_reasons(verdict)))
    for it in items(verdict):
        lines.append(f"• {it.heading}: {it.message}")
        if it.excerpt:
            lines.append(f"  Reply: “{it.excerpt}”")
        if it.suggestion:
            lines.append(f"  Try: {it.suggestion}")
    lines += _more(verdict)
    lines.append(policy_line(verdict))
    return "\n".join(lines)


def note_html(verdict: Verdict) -> str:
    """The same note as the small HTML subset Zendesk and Freshdesk render in internal notes."""
    e = html.escape
    parts = [f"<p><strong>{e(headline(verdict))}</strong></p>"]
    if verdict.action == "escalate":
        parts.append(f"<p><strong>Why now:</strong> {e('; '.join(escalation_reasons(verdict)))}</p>")
    found = items(verdict)
    if found:
        parts.append("<ul>")
        for it in found:
            row = f"<li><strong>{e(it.heading)}</strong>: {e(it.message)}"
            if it.excerpt:
                row += f"<br>Reply: <em>“{e(it.excerpt)}”</em>"
            if it.suggestion:
                row += f"<br>Try: {e(it.suggestion)}"
            parts.append(row + "</li>")
        parts.append("</ul>")
    parts += [f"<p>{e(line)}</p>" for line in _more(verdict)]
    parts.append(f"<p><small>{e(policy_line(verdict))}</small></p>")
    return "\n".join(parts)


def ticket_link(template: str | None, ticket_id: str) -> str | None:
    """The helpdesk's page for a ticket, from a template like https://acme.zendesk.com/agent/tickets/{ticket_id}."""
    return template.replace("{ticket_id}", quote(ticket_id, safe="")) if template else None


def ticket_tags(verdict: Verdict, prefix: str = "apology") -> list[str]:
    """Tags for helpdesk views and reports: one for the review, one per action, one per rule."""
    raw = [f"{prefix}-review"]
    if verdict.action == "escalate":
        raw.append(f"{prefix}-escalated")
    raw += [f"{prefix}-{f.rule}" for f in verdict.findings]
    return _unique([_TAG_UNSAFE.sub("-", t.lower()).strip("-") for t in raw])


def _item(f: Finding) -> NoteItem:
    return NoteItem(heading=f"{f.severity.capitalize()} · {f.rule}", message=f.message,
                    excerpt=_clip(f.excerpt, 200), suggestion=f.suggestion)


def _more(verdict: Verdict) -> list[str]:
    extra = len(verdict.findings) - MAX_FINDINGS
    return [f"…and {extra} more finding{'s' if extra != 1 else ''}"] if extra > 0 else []


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
