"""Intercom target: an internal note through the conversation reply endpoint."""

from __future__ import annotations

import json

import pytest

from tests.support.payloads import LIABILITY, verdict
from worker.errors import ConfigError, DeliveryError
from worker.helpdesks.intercom import to_event
from worker.targets.intercom import IntercomTarget
from worker.targets.notes import note_html

TARGET = IntercomTarget(access_token="dG9rOmFiYw==", admin_id="6827951")


def test_builds_the_exact_note() -> None:
    v = verdict(action="escalate", findings=(LIABILITY,), liability=True, ticket_id="215474343849634")
    req = TARGET.build(v, "msg_abc")
    assert (req.method, req.url) == ("POST", "https://api.intercom.io/conversations/215474343849634/reply")
    assert req.headers == {"Content-Type": "application/json", "Accept": "application/json",
                           "Authorization": "Bearer dG9rOmFiYw==", "Intercom-Version": "2.11"}
    assert json.loads(req.body) == {"message_type": "note", "type": "admin", "admin_id": "6827951",
                                    "body": note_html(v)}


def test_requests_are_deterministic_and_the_version_and_region_are_settings() -> None:
    assert TARGET.build(verdict(), "msg_1") == TARGET.build(verdict(), "msg_1")
    eu = IntercomTarget(access_token="t", admin_id="1", api_version="2.14", api_url="https://api.eu.intercom.io/")
    req = eu.build(verdict(), "m")
    assert req.url == "https://api.eu.intercom.io/conversations/5158/reply"
    assert req.headers["Intercom-Version"] == "2.14"


def test_our_note_coming_back_as_a_noted_webhook_is_not_reviewed() -> None:
    """The loop the signature line prevents: note out, conversation.admin.noted in, another note out."""
    note = json.loads(TARGET.build(verdict(), "m").body)["body"]
    webhook = {"topic": "conversation.admin.noted", "data": {"item": {"id": "5158", "conversation_parts": {
        "conversation_parts": [{"id": "77", "part_type": "note", "body": note, "created_at": 1795172640,
                                "author": {"type": "admin", "id": "6827951"}}]}}}}
    assert to_event(webhook, {}) is None


def test_a_foreign_ticket_id_is_a_permanent_failure_that_says_so() -> None:
    with pytest.raises(DeliveryError, match="is not an Intercom ticket id") as err:
        TARGET.build(verdict(ticket_id="hs-291938"), "m")
    assert err.value.permanent


@pytest.mark.parametrize(("kwargs", "env"), [
    ({"access_token": "", "admin_id": "1"}, "APOLOGY_INTERCOM_ACCESS_TOKEN"),
    ({"access_token": "t", "admin_id": ""}, "APOLOGY_INTERCOM_ADMIN_ID"),
    ({"access_token": "t", "admin_id": "sam@acme.example"}, "APOLOGY_INTERCOM_ADMIN_ID"),
])
def test_missing_or_wrong_settings_name_the_variable(kwargs: dict[str, str], env: str) -> None:
    with pytest.raises(ConfigError, match=env):
        IntercomTarget(**kwargs)
