"""One hierarchy for everything apology-worker raises on purpose, so callers can catch by kind."""

from __future__ import annotations


class ApologyWorkerError(Exception):
    """Base of every error this package raises deliberately; its message says what to do."""


class PolicyError(ApologyWorkerError):
    """A policy file is missing, malformed or invalid; the message names file, line and key."""


class EventError(ApologyWorkerError):
    """An inbound event or history line cannot be turned into the canonical shape."""


class DeliveryError(ApologyWorkerError):
    """A target refused or could not be reached."""

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None,
                 retry_after: float | None = None, response_body: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after
        self.response_body = response_body


class ConfigError(ApologyWorkerError):
    """A setting or routes file is invalid; the message names the variable or key."""


class PayloadError(EventError):
    """A helpdesk payload has a missing or malformed field: answer 422 with `issues`.

    `issues` lists each problem as {"field": dotted key path, "reason": what is wrong}, so the gateway can
    answer field by field and the helpdesk admin can fix the webhook body.
    """

    def __init__(self, source: str, issues: list[tuple[str, str]]) -> None:
        self.source = source
        self.issues = [{"field": f, "reason": r} for f, r in issues]
        detail = "; ".join(f"{f}: {r}" for f, r in issues)
        super().__init__(f"{source} payload rejected: {detail}")


class SignatureError(ApologyWorkerError):
    """An inbound request's signature is missing, malformed, stale or wrong: answer 401.

    Deliberately not an EventError: a forged or misconfigured sender is an authentication problem, not a
    payload one, and must never be answered 422 with details about the payload.
    """


class BrokerUnavailable(ApologyWorkerError):
    """The queue (Redis) did not accept an event: the gateway answers 503 so the sender retries later."""
