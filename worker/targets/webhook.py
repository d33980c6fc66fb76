"""The generic target: a Standard Webhooks-signed POST of the verdict to any URL.

Body: `{"type": "reply.annotated" | "reply.escalated", "timestamp": ..., "data": <verdict>}`. The
`webhook-id` header is the delivery id, stable across retries, so the receiver can deduplicate; the
timestamp and signature are made at each attempt, so a retry hours later is still inside the receiver's
replay window (the standardwebhooks library rejects timestamps more than five minutes off).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from worker.errors import ConfigError
from worker.models import Verdict
from worker.targets.base import OutboundRequest
from worker.targets.config import require_url, secret_option

EVENT_TYPES = {"annotate": "reply.annotated", "escalate": "reply.escalated", "none": "reply.reviewed"}
USER_AGENT = "apology-worker-webhook/1"


class WebhookTarget:
    """Signs with the `standardwebhooks` library, the same code receivers verify with."""

    def __init__(self, name: str, url: str, secret: str, *, headers: Mapping[str, str] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.name = name
        self.url = url
        self._signer = Webhook(secret)
        self._headers = dict(headers or {})
        self._clock = clock

    def build(self, verdict: Verdict, delivery_id: str) -> OutboundRequest:
        now = self._clock()
        body = json.dumps({"type": EVENT_TYPES[verdict.action], "timestamp": now.isoformat(),
                           "data": verdict.model_dump(mode="json")}, separators=(",", ":"))
        headers = {
            **self._headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(delivery_id, now, body),
        }
        return OutboundRequest("POST", self.url, headers, body.encode())


def from_config(name: str, options: Mapping[str, Any]) -> WebhookTarget:
    """A webhook target from a routes file entry: `url`, a secret, optional extra `headers`."""
    unknown = set(options) - {"type", "url", "secret", "secret_env", "secret_file", "headers"}
    if unknown:
        raise ConfigError(f"target {name!r}: unknown option(s) {', '.join(sorted(unknown))}")
    headers = options.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(f"target {name!r}: headers must be a mapping of header names to values")
    secret = secret_option(name, options)
    try:
        return WebhookTarget(name, require_url(name, options), secret,
                             headers={str(k): str(v) for k, v in headers.items()})
    except Exception as exc:  # the library's own secret errors
        raise ConfigError(f"target {name!r}: invalid secret: {exc}") from None
