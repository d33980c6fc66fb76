"""Schemathesis against the gateway's published OpenAPI: whatever arrives, never a 5xx.

Every source has its secret, so events are fuzzed up to authentication; /v1/review is fuzzed with no
inbound secret, so generated ticket histories run through the engine. Bounded to stay fast.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

from tests.unit.test_gateway import SECRETS, FakeQueue
from worker.engine import load_policy
from worker.gateway import GatewayDeps, create_app

POLICY = load_policy("liability-aware")
OPEN_REVIEW = {k: v for k, v in SECRETS.items() if k != "APOLOGY_INBOUND_SECRET"}
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _app(secrets: dict[str, str]) -> object:
    return create_app(GatewayDeps(FakeQueue().submit, lambda: True, POLICY, lambda env: secrets.get(env, "")))


events = schemathesis.openapi.from_asgi("/openapi.json", _app(SECRETS)).exclude(path="/v1/review")
review = schemathesis.openapi.from_asgi("/openapi.json", _app(OPEN_REVIEW)).include(path="/v1/review")


@events.parametrize()
@FUZZ
def test_events_and_probes_never_answer_5xx(case: Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.path, response.status_code, response.text[:500])


@review.parametrize()
@FUZZ
def test_review_never_answers_5xx(case: Case) -> None:
    response = case.call()
    assert response.status_code < 500, (response.status_code, response.text[:500])
