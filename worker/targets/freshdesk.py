"""Freshdesk out: a private note on the ticket (`POST /api/v2/tickets/{id}/notes`, `private: true`).

No tags: Freshdesk's ticket update replaces the whole tag list, which would need a read first and could
race with agents; the note carries everything.

Env (read by the pipeline, passed to the constructor):
- APOLOGY_FRESHDESK_DOMAIN: `acme` for acme.freshdesk.com (a full host is accepted too)
- APOLOGY_FRESHDESK_API_KEY: an agent's API key (Profile settings › View API key); sent as Basic auth
  `{key}:X`, as Freshdesk documents
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.models import Verdict
from worker.targets._http import JSON_HEADERS, basic_auth, host, json_body, numeric_id, require
from worker.targets.base import OutboundRequest
from worker.targets.config import known_options, setting
from worker.targets.notes import note_html


@dataclass(frozen=True, slots=True)
class FreshdeskTarget:
    domain: str
    api_key: str
    name: str = "freshdesk"
    api_url: str | None = None  # instead of https://<domain>.freshdesk.com: a proxy, or a test fake

    def __post_init__(self) -> None:
        host(self.domain, ".freshdesk.com", "APOLOGY_FRESHDESK_DOMAIN")
        require(self.api_key, "APOLOGY_FRESHDESK_API_KEY")

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        ticket_id = numeric_id(verdict.ticket_id, "Freshdesk")
        base = (self.api_url.rstrip("/") if self.api_url
                else "https://" + host(self.domain, ".freshdesk.com", "APOLOGY_FRESHDESK_DOMAIN"))
        return OutboundRequest(
            method="POST",
            url=f"{base}/api/v2/tickets/{ticket_id}/notes",
            headers={**JSON_HEADERS, "Authorization": basic_auth(self.api_key, "X")},
            body=json_body({"body": note_html(verdict), "private": True}),
        )


def from_config(name: str, options: Mapping[str, Any]) -> FreshdeskTarget:
    """A routes file entry `type: freshdesk`; credentials default to APOLOGY_FRESHDESK_DOMAIN/API_KEY."""
    known_options(name, options, {"domain", "api_key", "api_url"})
    return FreshdeskTarget(domain=setting(name, options, "domain", "APOLOGY_FRESHDESK_DOMAIN") or "",
                           api_key=setting(name, options, "api_key", "APOLOGY_FRESHDESK_API_KEY") or "",
                           name=name, api_url=setting(name, options, "api_url", required=False))
