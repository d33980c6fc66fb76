"""Freshdesk out: a private note on the ticket (`POST /api/v2/tickets/{id}/notes`, `private: true`).

No tags: Freshdesk's ticket update replaces the whole tag list, which would need a read first and could
race with agents; the note carries everything.

Env (read by the pipeline, passed to the constructor):
- APOLOGY_FRESHDESK_DOMAIN: `acme` for acme.freshdesk.com (a full host is accepted too)
- APOLOGY_FRESHDESK_API_KEY: an agent's API key (Profile settings › View API key); sent as Basic auth
  `{key}:X`, as Freshdesk documents
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.models import Verdict
from worker.targets._http import JSON_HEADERS, basic_auth, host, json_body, numeric_id, require
from worker.targets.base import OutboundRequest
from worker.targets.notes import note_html


@dataclass(frozen=True, slots=True)
class FreshdeskTarget:
    domain: str
    api_key: str
    name: str = "freshdesk"

    def __post_init__(self) -> None:
        host(self.domain, ".freshdesk.com", "APOLOGY_FRESHDESK_DOMAIN")
        require(self.api_key, "APOLOGY_FRESHDESK_API_KEY")

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        ticket_id = numeric_id(verdict.ticket_id, "Freshdesk")
        base = host(self.domain, ".freshdesk.com", "APOLOGY_FRESHDESK_DOMAIN")
        return OutboundRequest(
            method="POST",
            url=f"https://{base}/api/v2/tickets/{ticket_id}/notes",
            headers={**JSON_HEADERS, "Authorization": basic_auth(self.api_key, "X")},
            body=json_body({"body": note_html(verdict), "private": True}),
        )
