"""Sending one outbound request and deciding what its answer means; the same for every target.

Retry on network errors, 408, 429 and 5xx, with exponential backoff and full jitter, honouring a
`Retry-After` the receiver sends; any other 4xx is permanent. Redirects are not followed: a receiver
that moved must be reconfigured, not silently followed with a signed body.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from worker.errors import DeliveryError
from worker.targets.base import OutboundRequest

Outcome = Literal["delivered", "retry", "permanent"]
RETRY_STATUSES = frozenset({408, 429})
BODY_KEPT = 2000


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    status: int | None
    body: str
    retry_after: float | None = None
    error: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"HTTP {self.status}"


def new_client(connect: float = 5.0, read: float = 10.0, max_connections: int = 20) -> httpx.Client:
    """One pooled client per worker process: explicit timeouts, no redirects, keep-alive."""
    return httpx.Client(
        timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )


def send(client: httpx.Client, request: OutboundRequest) -> SendResult:
    started = time.perf_counter()
    try:
        response = client.request(request.method, request.url, headers=request.headers, content=request.body)
    except httpx.HTTPError as exc:
        return SendResult("retry", None, "", error=f"{type(exc).__name__}: {exc}",
                          seconds=time.perf_counter() - started)
    return classify(response.status_code, response.headers.get("retry-after"), response.text[:BODY_KEPT],
                    seconds=time.perf_counter() - started)


def failed(exc: DeliveryError) -> SendResult:
    """A DeliveryError raised before sending (a target that cannot build the request) as its result."""
    return SendResult("permanent" if exc.permanent else "retry", exc.status, exc.response_body or "",
                      exc.retry_after, error=str(exc))


def classify(status: int, retry_after: str | None = None, body: str = "", seconds: float = 0.0,
             now: datetime | None = None) -> SendResult:
    if 200 <= status < 300:
        return SendResult("delivered", status, body, seconds=seconds)
    if status in RETRY_STATUSES or status >= 500:
        return SendResult("retry", status, body, parse_retry_after(retry_after, now), seconds=seconds)
    # 3xx (redirects are not followed) and every other 4xx: sending again will not help.
    return SendResult("permanent", status, body, seconds=seconds)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(attempt: int, base: float, cap: float, retry_after: float | None = None,
            rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempt + 1`: full jitter over an exponential ceiling, or Retry-After.

    A receiver's Retry-After is honoured (never sooner), capped at `cap` so one bad header cannot park a
    delivery for days.
    """
    ceiling = min(cap, base * (2 ** attempt))
    delay = (rng or random).uniform(base / 2, ceiling) if ceiling > base / 2 else ceiling
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return round(delay, 3)
