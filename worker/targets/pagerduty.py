"""PagerDuty out: a page for escalations, through the Events API v2.

`POST https://events.pagerduty.com/v2/enqueue` with `event_action: trigger` and a `dedup_key` derived from
ticket, message and policy version, so a retried delivery, a replayed event or a second worker adds to the
same incident instead of paging twice. Only escalations page: any other verdict is refused as a permanent
DeliveryError (a routes mistake), never sent.

Env (read by the pipeline, passed to the constructor):
- APOLOGY_PAGERDUTY_ROUTING_KEY: the integration key of an Events API v2 integration on the service
- APOLOGY_TICKET_URL (optional): link template, e.g. https://acme.zendesk.com/agent/tickets/{ticket_id}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.errors import DeliveryError
from worker.models import Verdict
from worker.targets._http import json_body, require
from worker.targets.base import OutboundRequest
from worker.targets.config import known_options, setting
from worker.targets.notes import escalation_reasons, escalation_summary, items, short_version, ticket_link

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_LIMIT = 1024  # PagerDuty truncates longer summaries


@dataclass(frozen=True, slots=True)
class PagerDutyTarget:
    routing_key: str
    ticket_url: str | None = None
    source: str = "apology-worker"
    name: str = "pagerduty"
    api_url: str | None = None  # the EU service (https://events.eu.pagerduty.com/v2/enqueue), or a test fake

    def __post_init__(self) -> None:
        require(self.routing_key, "APOLOGY_PAGERDUTY_ROUTING_KEY")

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        if verdict.action != "escalate":
            raise DeliveryError(f"pagerduty pages escalations only, got action {verdict.action!r} for ticket "
                                f"{verdict.ticket_id}: route only `escalate` to this target", permanent=True)
        event: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key(verdict),
            "client": "apology-worker",
            "payload": {
                "summary": escalation_summary(verdict, SUMMARY_LIMIT),
                "source": self.source,
                "severity": severity(verdict),
                "component": f"ticket {verdict.ticket_id}",
                "class": "apology-escalation",
                "custom_details": {
                    "ticket_id": verdict.ticket_id, "message_id": verdict.message_id,
                    "agent_id": verdict.agent_id, "why": escalation_reasons(verdict),
                    "findings": [f"{it.heading}: {it.message}" + (f" (“{it.excerpt}”)" if it.excerpt else "")
                                 for it in items(verdict)],
                    "score": verdict.score,
                    "policy": f"{verdict.policy.name} {short_version(verdict.policy.version)}",
                    "delivery_id": delivery_id,
                },
            },
        }
        link = ticket_link(self.ticket_url, verdict.ticket_id)
        if link:
            event["links"] = [{"href": link, "text": f"Open ticket {verdict.ticket_id}"}]
        return OutboundRequest(method="POST", url=self.api_url or EVENTS_URL,
                               headers={"Content-Type": "application/json"}, body=json_body(event))


def dedup_key(verdict: Verdict) -> str:
    """One incident per reviewed reply and policy version, whoever sends it and however often."""
    key = "|".join((verdict.ticket_id, verdict.message_id, verdict.policy.version))
    return "apology-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def severity(verdict: Verdict) -> str:
    """`critical` when the company may be exposed (legal risk, written admission of fault), else `error`."""
    if verdict.context.legal_risk or verdict.signals.liability_admission:
        return "critical"
    return "error"


def from_config(name: str, options: Mapping[str, Any]) -> PagerDutyTarget:
    """A routes file entry `type: pagerduty`; defaults to APOLOGY_PAGERDUTY_ROUTING_KEY and APOLOGY_TICKET_URL."""
    known_options(name, options, {"routing_key", "ticket_url", "source", "api_url"})
    return PagerDutyTarget(
        routing_key=setting(name, options, "routing_key", "APOLOGY_PAGERDUTY_ROUTING_KEY") or "",
        ticket_url=setting(name, options, "ticket_url", "APOLOGY_TICKET_URL", required=False),
        source=str(options.get("source") or "apology-worker"), name=name,
        api_url=setting(name, options, "api_url", required=False))
