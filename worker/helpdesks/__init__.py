"""Helpdesk payloads in: one module per helpdesk, each turning its webhook into the canonical event.

The gateway dispatches `POST /v1/events/{source}` through ADAPTERS: authenticate the raw request with the
secret named by `secret_env`, then `to_event` (None means "deliberately ignored: answer 2xx, enqueue
nothing"). Adapters are pure: no network, no clock but the `now` they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.helpdesks import freshdesk, generic, helpscout, intercom, zendesk
from worker.helpdesks._signing import Verify
from worker.helpdesks.freshdesk import verify_freshdesk
from worker.helpdesks.generic import verify_generic
from worker.helpdesks.helpscout import verify_helpscout
from worker.helpdesks.intercom import verify_intercom
from worker.helpdesks.zendesk import verify_zendesk
from worker.models import TicketEvent

ToEvent = Callable[[bytes | Mapping[str, Any], Mapping[str, str]], TicketEvent | None]


@dataclass(frozen=True, slots=True)
class Adapter:
    """One inbound source: how to authenticate its requests and how to read them."""

    source: str
    to_event: ToEvent
    authenticate: Verify  # (raw body, headers, secret, now) -> None, or SignatureError / ConfigError
    secret_env: str  # the environment variable holding the secret `authenticate` needs


ADAPTERS: dict[str, Adapter] = {
    m.SOURCE: Adapter(m.SOURCE, m.to_event, m.authenticate, m.SECRET_ENV)
    for m in (zendesk, freshdesk, helpscout, intercom, generic)
}

__all__ = ["ADAPTERS", "Adapter", "verify_freshdesk", "verify_generic", "verify_helpscout", "verify_intercom",
           "verify_zendesk"]
