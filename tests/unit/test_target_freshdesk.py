"""Freshdesk target: a private note through the notes endpoint."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.payloads import verdict
from worker.errors import ConfigError, DeliveryError
from worker.targets.freshdesk import FreshdeskTarget
from worker.targets.notes import note_html


def test_builds_the_exact_private_note() -> None:
    v = verdict(ticket_id="4021")
    req = FreshdeskTarget(domain="acme", api_key="key42").build(v, "msg_abc")
    assert (req.method, req.url) == ("POST", "https://acme.freshdesk.com/api/v2/tickets/4021/notes")
    assert req.headers == {"Content-Type": "application/json", "Accept": "application/json",
                           "Authorization": "Basic " + base64.b64encode(b"key42:X").decode()}
    assert json.loads(req.body) == {"body": note_html(v), "private": True}


def test_foreign_ticket_ids_and_missing_settings_fail_clearly() -> None:
    with pytest.raises(DeliveryError):
        FreshdeskTarget(domain="acme.freshdesk.com", api_key="k").build(verdict(ticket_id="hs-1"), "m")
    with pytest.raises(ConfigError, match="APOLOGY_FRESHDESK_API_KEY"):
        FreshdeskTarget(domain="acme", api_key="")
    with pytest.raises(ConfigError, match="APOLOGY_FRESHDESK_DOMAIN"):
        FreshdeskTarget(domain="acme.freshdesk.com/api", api_key="k")
