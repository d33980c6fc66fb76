"""Shared pieces of inbound request authentication: HMAC over the raw body, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from worker.errors import ConfigError, SignatureError

Digest = Callable[[], Any]


def hmac_b64(secret: str, message: bytes, digest: Digest = hashlib.sha256) -> bytes:
    return base64.b64encode(hmac.new(secret.encode(), message, digest).digest())


def hmac_hex(secret: str, message: bytes, digest: Digest = hashlib.sha256) -> bytes:
    return hmac.new(secret.encode(), message, digest).hexdigest().encode()


def require_secret(secret: str, env: str) -> None:
    if not secret:
        raise ConfigError(f"{env} is not set: inbound requests for this source cannot be authenticated")


def check(expected: bytes, given: str | None, header: str) -> None:
    """Raise unless `given` (a header value) equals `expected`, without leaking where they differ."""
    if not given:
        raise SignatureError(f"missing {header} header")
    if not hmac.compare_digest(expected, given.strip().encode("utf-8", "replace")):
        raise SignatureError(f"{header} does not match the request body")


def aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


Verify = Callable[[bytes, Mapping[str, str], str, datetime], None]
