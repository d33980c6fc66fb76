"""Classifying answers, Retry-After and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from worker.delivery import backoff, classify, parse_retry_after


@pytest.mark.parametrize("status, outcome", [
    (200, "delivered"), (204, "delivered"), (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"),
    (301, "permanent"), (400, "permanent"), (401, "permanent"), (404, "permanent"), (410, "permanent"),
])
def test_classify(status: int, outcome: str) -> None:
    assert classify(status).outcome == outcome


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Fri, 20 Nov 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("yesterday") is None
    assert classify(503, "5").retry_after == 5.0


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff(a, 2.0, 600.0, rng=rng) for a in range(12)]
    assert all(1.0 <= d <= 600.0 for d in delays)
    assert max(delays[:2]) <= 4.0 and max(delays[8:]) > 60
    assert backoff(0, 2.0, 600.0, retry_after=30, rng=rng) == 30.0
    assert backoff(0, 2.0, 600.0, retry_after=86400, rng=rng) == 600.0  # capped
