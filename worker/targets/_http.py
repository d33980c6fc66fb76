"""Small pieces every helpdesk target needs: deterministic JSON bodies, Basic auth, ids safe in a path."""

from __future__ import annotations

import base64
import json
from typing import Any

from worker.errors import ConfigError, DeliveryError

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def json_body(data: Any) -> bytes:
    """Compact UTF-8 JSON; the same data always gives the same bytes (retries send identical requests)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def host(domain: str, suffix: str, env: str) -> str:
    """`acme` or `acme.zendesk.com` (or a full https:// URL) to the API host."""
    value = domain.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not value or "/" in value:
        raise ConfigError(f"{env} must be your account's subdomain (acme) or host (acme{suffix}), "
                          f"got {domain!r}")
    return value if "." in value else value + suffix


def numeric_id(ticket_id: str, target: str) -> str:
    """Helpdesk ticket ids are integers; anything else means the verdict came from another source."""
    if not ticket_id.isascii() or not ticket_id.isdigit():
        article = "an" if target[:1].lower() in "aeiou" else "a"
        raise DeliveryError(f"{target}: ticket id {ticket_id!r} is not {article} {target} ticket id; check the "
                            "routes so only this helpdesk's events reach this target", permanent=True)
    return ticket_id


def require(value: str, env: str) -> str:
    if not value:
        raise ConfigError(f"{env} is not set")
    return value
