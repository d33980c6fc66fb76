"""The generic webhook target signs what standardwebhooks verifies; its id is stable across attempts."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from tests.conftest import agent, customer, ticket
from worker.engine import Policy, review_reply
from worker.targets.base import delivery_id
from worker.targets.webhook import WebhookTarget

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_requests_verify_and_keep_their_id_across_attempts(policy: Policy) -> None:
    v = review_reply(agent("Sorry for any inconvenience."), [customer("It broke!")], ticket(), policy)
    now = [datetime.now(UTC)]
    target = WebhookTarget("webhook", "https://hooks.example.com/x", SECRET, clock=lambda: now[0])
    did = delivery_id(v, target.name)
    first = target.build(v, did)
    now[0] += timedelta(minutes=1)
    second = target.build(v, did)
    for request in (first, second):
        body = Webhook(SECRET).verify(request.body, request.headers)
        assert body["data"] == v.model_dump(mode="json")
        assert body["type"] == f"reply.{'annotated' if v.action == 'annotate' else 'escalated'}"
        assert request.headers["webhook-id"] == did
        assert request.method == "POST" and request.url == "https://hooks.example.com/x"
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert json.loads(first.body)["data"] == json.loads(second.body)["data"]
    assert target.build(v, did) == target.build(v, did)  # deterministic for one clock reading
