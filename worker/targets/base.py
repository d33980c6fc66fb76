"""What every target builds: one outbound HTTP request per (verdict, target), with a stable id.

Targets are pure request builders; sending, retrying, rate limiting and dead-lettering belong to the
delivery task, so every target gets the same guarantees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from worker.models import Verdict


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Target(Protocol):
    """A configured destination (a generic webhook, a Zendesk instance, a Slack channel...)."""

    name: str

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        """The exact request to send; must be deterministic for the same verdict and delivery id."""
        ...


def delivery_id(verdict: Verdict, target_name: str) -> str:
    """Stable across retries, replays and duplicate events: the receiver's idempotency key."""
    key = "|".join((verdict.ticket_id, verdict.message_id, verdict.policy.version, target_name))
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:24]
