"""Slack out: a message to the supervisors' channel through an incoming webhook.

Blocks (ticket link, rule, excerpt, suggestion, why now) for people; a plain `text` fallback for
notifications and clients that cannot show blocks. Slack's block limits are respected by clipping.

Env (read by the pipeline, passed to the constructor):
- APOLOGY_SLACK_WEBHOOK_URL: the incoming webhook URL (https://hooks.slack.com/services/…); it is the
  credential, keep it secret
- APOLOGY_TICKET_URL (optional): link template, e.g. https://acme.zendesk.com/agent/tickets/{ticket_id}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.models import Verdict
from worker.targets._http import json_body, require
from worker.targets.base import OutboundRequest
from worker.targets.config import known_options, setting
from worker.targets.notes import (
    escalation_reasons,
    escalation_summary,
    headline,
    items,
    policy_line,
    ticket_link,
)

SECTION_LIMIT = 3000  # characters of text in one section block
HEADER_LIMIT = 150


@dataclass(frozen=True, slots=True)
class SlackTarget:
    webhook_url: str
    ticket_url: str | None = None
    name: str = "slack"

    def __post_init__(self) -> None:
        require(self.webhook_url, "APOLOGY_SLACK_WEBHOOK_URL")

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        payload = {"text": fallback_text(verdict, self.ticket_url),
                   "blocks": blocks(verdict, self.ticket_url, delivery_id)}
        return OutboundRequest(method="POST", url=self.webhook_url,
                               headers={"Content-Type": "application/json"}, body=json_body(payload))


def fallback_text(verdict: Verdict, ticket_url: str | None = None) -> str:
    """What a phone notification shows: the ticket and why it matters, no markup."""
    line = (escalation_summary(verdict) if verdict.action == "escalate"
            else f"Ticket {verdict.ticket_id}: {headline(verdict)}")
    link = ticket_link(ticket_url, verdict.ticket_id)
    return f"{line} {link}" if link else line


def blocks(verdict: Verdict, ticket_url: str | None, delivery_id: str) -> list[dict[str, Any]]:
    escalated = verdict.action == "escalate"
    title = f"{'Escalation' if escalated else 'Apology review'}: ticket {verdict.ticket_id}"
    link = ticket_link(ticket_url, verdict.ticket_id)
    ticket_id = _esc(verdict.ticket_id)
    ticket = f"<{link}|Open ticket {ticket_id}>" if link else f"Ticket {ticket_id}"
    intro = f"*{ticket}* · {_esc(headline(verdict))}"
    if escalated:
        intro += "\n*Why now:* " + _esc("; ".join(escalation_reasons(verdict)))
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_LIMIT)}},
        _section(intro),
    ]
    for it in items(verdict):
        text = f"*{_esc(it.heading)}*: {_esc(it.message)}"
        if it.excerpt:
            text += f"\n> {_esc(it.excerpt)}"
        if it.suggestion:
            text += f"\n*Suggestion:* {_esc(it.suggestion)}"
        out.append(_section(text))
    out.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _esc(f"{policy_line(verdict)} · {delivery_id}")}]})
    return out


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}}


def _esc(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def from_config(name: str, options: Mapping[str, Any]) -> SlackTarget:
    """A routes file entry `type: slack`; defaults to APOLOGY_SLACK_WEBHOOK_URL and APOLOGY_TICKET_URL."""
    known_options(name, options, {"webhook_url", "ticket_url"})
    return SlackTarget(webhook_url=setting(name, options, "webhook_url", "APOLOGY_SLACK_WEBHOOK_URL") or "",
                       ticket_url=setting(name, options, "ticket_url", "APOLOGY_TICKET_URL", required=False),
                       name=name)
