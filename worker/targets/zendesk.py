"""Zendesk out: an internal note (`public: false`) on the ticket, and our tags added to its tags.

One request, as the delivery task expects: `PUT /api/v2/tickets/{id}.json` with `ticket.comment` (the
note as `html_body`) and `ticket.additional_tags`, which adds tags without replacing the ticket's existing
ones (`ticket.tags` would replace them all). Authenticated with an API token: Basic `{email}/token:{token}`.

Env (read by the pipeline, passed to the constructor):
- APOLOGY_ZENDESK_SUBDOMAIN: `acme` for acme.zendesk.com (a full host is accepted too)
- APOLOGY_ZENDESK_EMAIL: the agent the API token acts as (the note's author)
- APOLOGY_ZENDESK_API_TOKEN: an API token from Admin Center › Apps and integrations › Zendesk API
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.models import Verdict
from worker.targets._http import JSON_HEADERS, basic_auth, host, json_body, numeric_id, require
from worker.targets.base import OutboundRequest
from worker.targets.config import known_options, setting
from worker.targets.notes import note_html, ticket_tags


@dataclass(frozen=True, slots=True)
class ZendeskTarget:
    subdomain: str
    email: str
    api_token: str
    name: str = "zendesk"
    tag_prefix: str = "apology"
    api_url: str | None = None  # instead of https://<subdomain>.zendesk.com: a proxy, or a test fake

    def __post_init__(self) -> None:
        host(self.subdomain, ".zendesk.com", "APOLOGY_ZENDESK_SUBDOMAIN")
        require(self.email, "APOLOGY_ZENDESK_EMAIL")
        require(self.api_token, "APOLOGY_ZENDESK_API_TOKEN")

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        ticket_id = numeric_id(verdict.ticket_id, "Zendesk")
        base = (self.api_url.rstrip("/") if self.api_url
                else "https://" + host(self.subdomain, ".zendesk.com", "APOLOGY_ZENDESK_SUBDOMAIN"))
        body = {"ticket": {
            "comment": {"html_body": note_html(verdict), "public": False},
            "additional_tags": ticket_tags(verdict, self.tag_prefix),
        }}
        return OutboundRequest(
            method="PUT",
            url=f"{base}/api/v2/tickets/{ticket_id}.json",
            headers={**JSON_HEADERS, "Authorization": basic_auth(f"{self.email}/token", self.api_token)},
            body=json_body(body),
        )


def from_config(name: str, options: Mapping[str, Any]) -> ZendeskTarget:
    """A routes file entry `type: zendesk`; credentials default to APOLOGY_ZENDESK_SUBDOMAIN/EMAIL/API_TOKEN."""
    known_options(name, options, {"subdomain", "email", "api_token", "tag_prefix", "api_url"})
    return ZendeskTarget(
        subdomain=setting(name, options, "subdomain", "APOLOGY_ZENDESK_SUBDOMAIN") or "",
        email=setting(name, options, "email", "APOLOGY_ZENDESK_EMAIL") or "",
        api_token=setting(name, options, "api_token", "APOLOGY_ZENDESK_API_TOKEN") or "",
        name=name, tag_prefix=str(options.get("tag_prefix") or "apology"),
        api_url=setting(name, options, "api_url", required=False),
    )
