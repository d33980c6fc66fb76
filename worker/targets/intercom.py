"""Intercom out: an internal note on the conversation (`POST /conversations/{id}/reply`, `message_type: note`).

Intercom writes a note as an admin's reply of type note, so the note needs a teammate to author it
(`admin_id`). No tags: tagging a conversation takes the tag's id, i.e. a lookup (and perhaps a creation)
before each request, where a delivery is one request; the note carries everything. Our note coming back
as a `conversation.admin.noted` webhook is recognised by the inbound adapter and skipped.

Env (read by the pipeline, passed to the constructor):
- APOLOGY_INTERCOM_ACCESS_TOKEN: the app's access token (Developer Hub › your app › Authentication); sent
  as `Authorization: Bearer <token>`
- APOLOGY_INTERCOM_ADMIN_ID: the numeric id of the teammate the notes are written as (`GET /me` with the
  token answers the app's own admin)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.errors import ConfigError
from worker.models import Verdict
from worker.targets._http import JSON_HEADERS, json_body, numeric_id, require
from worker.targets.base import OutboundRequest
from worker.targets.config import known_options, setting
from worker.targets.notes import note_html

API_URL = "https://api.intercom.io"  # EU and Australian workspaces: https://api.eu.intercom.io, api.au.…
API_VERSION = "2.11"  # the Intercom-Version header: the request and answer shapes this module was written for


@dataclass(frozen=True, slots=True)
class IntercomTarget:
    access_token: str
    admin_id: str
    name: str = "intercom"
    api_version: str = API_VERSION
    api_url: str | None = None  # instead of https://api.intercom.io: another region, a proxy, or a test fake

    def __post_init__(self) -> None:
        require(self.access_token, "APOLOGY_INTERCOM_ACCESS_TOKEN")
        require(self.admin_id, "APOLOGY_INTERCOM_ADMIN_ID")
        if not (self.admin_id.isascii() and self.admin_id.isdigit()):
            raise ConfigError(f"APOLOGY_INTERCOM_ADMIN_ID must be a teammate's numeric id (GET /me answers the "
                              f"token's own), got {self.admin_id!r}")
        require(self.api_version, "the Intercom API version (api_version)")

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        conversation_id = numeric_id(verdict.ticket_id, "Intercom")
        base = (self.api_url or API_URL).rstrip("/")
        return OutboundRequest(
            method="POST",
            url=f"{base}/conversations/{conversation_id}/reply",
            headers={**JSON_HEADERS, "Authorization": f"Bearer {self.access_token}",
                     "Intercom-Version": self.api_version},
            body=json_body({"message_type": "note", "type": "admin", "admin_id": self.admin_id,
                            "body": note_html(verdict)}),
        )


def from_config(name: str, options: Mapping[str, Any]) -> IntercomTarget:
    """A routes file entry `type: intercom`; credentials default to APOLOGY_INTERCOM_ACCESS_TOKEN/ADMIN_ID."""
    known_options(name, options, {"access_token", "admin_id", "api_version", "api_url"})
    return IntercomTarget(
        access_token=setting(name, options, "access_token", "APOLOGY_INTERCOM_ACCESS_TOKEN") or "",
        admin_id=setting(name, options, "admin_id", "APOLOGY_INTERCOM_ADMIN_ID") or "",
        name=name, api_version=setting(name, options, "api_version", required=False) or API_VERSION,
        api_url=setting(name, options, "api_url", required=False),
    )
