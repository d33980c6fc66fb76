"""Generic in: any system that can post the canonical ticket event itself, signed per Standard Webhooks.

The body is the canonical event of DESIGN.md (`event_id`, `ticket`, `message`, `history`...); `source`
defaults to "generic". Requests carry `webhook-id`, `webhook-timestamp` and `webhook-signature`, verified
with the `standardwebhooks` library (5 minutes of tolerance).

Env read by the gateway: APOLOGY_INBOUND_SECRET, the `whsec_…` secret shared with the sender.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from worker.errors import ConfigError, SignatureError
from worker.helpdesks._payload import decode, validate_event
from worker.helpdesks._signing import require_secret
from worker.models import TicketEvent

SOURCE = "generic"
SECRET_ENV = "APOLOGY_INBOUND_SECRET"


def to_event(payload: bytes | Mapping[str, Any], headers: Mapping[str, str]) -> TicketEvent | None:
    """The canonical event as sent, validated; PayloadError names each field the contract refuses."""
    doc = decode(SOURCE, payload)
    return validate_event(doc.opt_text("source") or SOURCE, doc.data)


def verify_generic(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    """Raise SignatureError unless the Standard Webhooks signature headers match the body."""
    require_secret(secret, SECRET_ENV)
    try:
        hook = Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
        raise ConfigError(f"{SECRET_ENV} is not a valid whsec_… secret ({exc})") from None
    try:
        hook.verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        raise SignatureError(f"Standard Webhooks signature rejected: {exc}") from None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        # A malformed webhook-signature entry ("v1" without a comma, bad base64) or a non-UTF-8 body.
        raise SignatureError("Standard Webhooks signature headers are malformed") from None


def authenticate(body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
    verify_generic(body, headers, secret)
