"""Zendesk target: one PUT with an internal note and tags added (never replaced)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.payloads import LIABILITY, verdict
from worker.errors import ConfigError, DeliveryError
from worker.targets.notes import note_html
from worker.targets.zendesk import ZendeskTarget

TARGET = ZendeskTarget(subdomain="acme", email="bot@acme.example", api_token="tok123")


def test_builds_the_exact_ticket_update() -> None:
    v = verdict(action="escalate", findings=(LIABILITY,), liability=True)
    req = TARGET.build(v, "msg_abc")
    assert (req.method, req.url) == ("PUT", "https://acme.zendesk.com/api/v2/tickets/5158.json")
    assert req.headers == {
        "Content-Type": "application/json", "Accept": "application/json",
        "Authorization": "Basic " + base64.b64encode(b"bot@acme.example/token:tok123").decode(),
    }
    assert json.loads(req.body) == {"ticket": {
        "comment": {"html_body": note_html(v), "public": False},
        "additional_tags": ["apology-review", "apology-escalated", "apology-liability-admission"],
    }}
    assert "tags" not in json.loads(req.body)["ticket"]  # `tags` would replace the agents' tags


def test_requests_are_deterministic() -> None:
    assert TARGET.build(verdict(), "msg_1") == TARGET.build(verdict(), "msg_1")


def test_full_host_is_accepted() -> None:
    target = ZendeskTarget(subdomain="https://help.acme.example/", email="b@a.example", api_token="t")
    assert target.build(verdict(), "m").url == "https://help.acme.example/api/v2/tickets/5158.json"


def test_a_foreign_ticket_id_is_a_permanent_failure() -> None:
    with pytest.raises(DeliveryError) as err:
        TARGET.build(verdict(ticket_id="T-417"), "m")
    assert err.value.permanent


@pytest.mark.parametrize(("kwargs", "env"), [
    ({"subdomain": "", "email": "e", "api_token": "t"}, "APOLOGY_ZENDESK_SUBDOMAIN"),
    ({"subdomain": "acme", "email": "", "api_token": "t"}, "APOLOGY_ZENDESK_EMAIL"),
    ({"subdomain": "acme", "email": "e", "api_token": ""}, "APOLOGY_ZENDESK_API_TOKEN"),
])
def test_missing_credentials_name_the_variable(kwargs: dict[str, str], env: str) -> None:
    with pytest.raises(ConfigError, match=env):
        ZendeskTarget(**kwargs)
