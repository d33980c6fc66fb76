"""The shared token bucket on fakeredis: bursts, refill, per-target isolation, unlimited targets."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest

from worker.errors import ConfigError
from worker.ratelimit import Rate, TokenBuckets


@pytest.fixture()
def buckets() -> TokenBuckets:
    return TokenBuckets(fakeredis.FakeRedis(), {"zendesk": Rate(per_second=2, burst=3), "slack": Rate(1)})


def test_a_burst_goes_through_then_the_next_waits_for_a_refill(buckets: TokenBuckets) -> None:
    assert [buckets.take("zendesk", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("zendesk", now=100.0) == pytest.approx(0.5)
    assert buckets.take("zendesk", now=100.5) == 0.0  # half a second refills one token at 2/s


def test_refill_never_exceeds_the_burst(buckets: TokenBuckets) -> None:
    buckets.take("zendesk", now=0.0)
    assert [buckets.take("zendesk", now=1000.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("zendesk", now=1000.0) > 0


def test_targets_have_separate_buckets_and_unlisted_ones_are_unlimited(buckets: TokenBuckets) -> None:
    assert buckets.take("slack", now=5.0) == 0.0
    assert buckets.take("slack", now=5.0) == pytest.approx(1.0)
    assert buckets.take("zendesk", now=5.0) == 0.0
    assert all(buckets.take("webhook") == 0.0 for _ in range(100))


def test_without_a_clock_the_redis_server_time_is_used(buckets: TokenBuckets) -> None:
    assert buckets.take("slack") == 0.0
    assert 0.0 < buckets.take("slack") <= 1.0


def test_shared_by_every_worker_through_the_same_redis() -> None:
    server = fakeredis.FakeServer()
    a = TokenBuckets(fakeredis.FakeRedis(server=server), {"pd": Rate(1)})
    b = TokenBuckets(fakeredis.FakeRedis(server=server), {"pd": Rate(1)})
    assert a.take("pd", now=10.0) == 0.0
    assert b.take("pd", now=10.0) == pytest.approx(1.0)


def test_invalid_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        Rate(per_second=0)


def test_routes_file_rate_limits_a_target(tmp_path: Path) -> None:
    from worker.routing import build_router

    routes = tmp_path / "routes.yaml"
    routes.write_text("targets:\n  hook:\n    type: webhook\n    url: https://hooks.example.com/x\n"
                      "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n    rate: 120/min\n"
                      "routes:\n  - targets: [hook]\n", encoding="utf-8")
    router = build_router(routes_path=routes)
    assert router.rates["hook"].per_second == 2.0 and router.rates["hook"].burst == 120
    routes.write_text(routes.read_text().replace("120/min", "lots"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"targets\.hook\.rate"):
        build_router(routes_path=routes)

