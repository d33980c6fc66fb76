"""The shipped receiver verifies signatures, records deliveries and waits without sleeping."""

from __future__ import annotations

import base64
import threading

import httpx
import pytest

from tests.conftest import agent, customer, ticket
from worker.engine import Policy, review_reply
from worker.targets.base import delivery_id
from worker.targets.webhook import WebhookTarget
from worker.testing import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()


def test_receiver_accepts_good_signatures_and_rejects_others(policy: Policy) -> None:
    v = review_reply(agent("Sorry for any inconvenience."), [customer("It broke!")], ticket(), policy)
    with WebhookReceiver(SECRET) as receiver:
        good = WebhookTarget("webhook", receiver.url, SECRET).build(v, delivery_id(v, "webhook"))
        bad = WebhookTarget("webhook", receiver.url, OTHER).build(v, "msg_forged")
        threading.Thread(target=lambda: httpx.post(good.url, headers=good.headers, content=good.body)).start()
        assert httpx.post(bad.url, headers=bad.headers, content=bad.body).status_code == 401
        [delivery] = receiver.wait_for_deliveries(1, timeout=10)
        assert delivery.id == delivery_id(v, "webhook")
        assert delivery.data == v.model_dump(mode="json")
        assert len(receiver.rejected) == 1
        with pytest.raises(TimeoutError):
            receiver.wait_for(lambda r: len(r.deliveries) > 1, timeout=0.2)
