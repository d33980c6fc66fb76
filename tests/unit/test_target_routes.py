"""Routes files build the helpdesk targets: the shipped examples, env defaults, inline and *_env options."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.payloads import EXAMPLES, LIABILITY, verdict
from worker.errors import ConfigError
from worker.models import Ticket
from worker.routing import build_router
from worker.targets.freshdesk import FreshdeskTarget
from worker.targets.intercom import IntercomTarget
from worker.targets.pagerduty import PagerDutyTarget
from worker.targets.slack import SlackTarget
from worker.targets.zendesk import ZendeskTarget

ENV = {"APOLOGY_ZENDESK_SUBDOMAIN": "acme", "APOLOGY_ZENDESK_EMAIL": "bot@acme.example",
       "APOLOGY_ZENDESK_API_TOKEN": "tok", "APOLOGY_FRESHDESK_DOMAIN": "acme", "APOLOGY_FRESHDESK_API_KEY": "k",
       "APOLOGY_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
       "APOLOGY_PAGERDUTY_ROUTING_KEY": "R0UTINGKEY", "APOLOGY_TICKET_URL": "https://t.example/{ticket_id}",
       "APOLOGY_INTERCOM_ACCESS_TOKEN": "dG9rOmFiYw==", "APOLOGY_INTERCOM_ADMIN_ID": "6827951"}


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


@pytest.mark.parametrize("name", ["zendesk.yaml", "freshdesk.yaml", "helpscout.yaml", "intercom.yaml",
                                  "slack-pagerduty.yaml"])
def test_every_shipped_example_is_a_valid_routes_file(env: None, name: str) -> None:
    router = build_router(routes_path=EXAMPLES / name)
    assert router.targets and router.routes


def test_zendesk_example_routes_an_annotation_to_a_zendesk_note_from_env(env: None) -> None:
    router = build_router(routes_path=EXAMPLES / "zendesk.yaml")
    assert router.destinations(verdict(action="annotate"), Ticket(id="5158")) == ["zendesk"]
    assert router.destinations(verdict(action="none", findings=()), Ticket(id="5158")) == []
    target = router.target("zendesk")
    assert isinstance(target, ZendeskTarget)
    request = target.build(verdict(), "msg_1")
    assert (request.method, request.url) == ("PUT", "https://acme.zendesk.com/api/v2/tickets/5158.json")


def test_intercom_example_routes_an_annotation_to_a_conversation_note_from_env(env: None) -> None:
    router = build_router(routes_path=EXAMPLES / "intercom.yaml")
    ticket = Ticket(id="215474343849634")
    assert router.destinations(verdict(action="annotate"), ticket) == ["intercom"]
    assert router.destinations(verdict(action="none", findings=()), ticket) == []
    target = router.target("intercom")
    assert isinstance(target, IntercomTarget) and target.admin_id == ENV["APOLOGY_INTERCOM_ADMIN_ID"]
    request = target.build(verdict(ticket_id="215474343849634"), "msg_1")
    assert (request.method, request.url) == ("POST", "https://api.intercom.io/conversations/215474343849634/reply")
    assert request.headers["Authorization"] == "Bearer " + ENV["APOLOGY_INTERCOM_ACCESS_TOKEN"]


def test_slack_pagerduty_example_pages_only_critical_escalations(env: None) -> None:
    router = build_router(routes_path=EXAMPLES / "slack-pagerduty.yaml")
    assert router.destinations(verdict(action="escalate"), Ticket(id="1")) == ["supervisors"]
    assert router.destinations(verdict(action="escalate", findings=(LIABILITY,)), Ticket(id="1")) == [
        "supervisors", "pager"]
    assert isinstance(router.target("supervisors"), SlackTarget)
    pager = router.target("pager")
    assert isinstance(pager, PagerDutyTarget) and pager.ticket_url == ENV["APOLOGY_TICKET_URL"]


def test_inline_and_env_options_and_api_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_FD_KEY", "secret-key")
    routes = tmp_path / "routes.yaml"
    routes.write_text("targets:\n  fd:\n    type: freshdesk\n    domain: acme\n    api_key_env: MY_FD_KEY\n"
                      "    api_url: http://127.0.0.1:9/\nroutes:\n  - targets: [fd]\n")
    target = build_router(routes_path=routes).target("fd")
    assert isinstance(target, FreshdeskTarget) and target.api_key == "secret-key"
    assert target.build(verdict(), "m").url == "http://127.0.0.1:9/api/v2/tickets/5158/notes"


def test_missing_credentials_and_unknown_options_name_what_to_set(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ENV:
        monkeypatch.delenv(k, raising=False)
    routes = tmp_path / "routes.yaml"
    routes.write_text("targets:\n  zd:\n    type: zendesk\nroutes: []\n")
    with pytest.raises(ConfigError, match="APOLOGY_ZENDESK_SUBDOMAIN"):
        build_router(routes_path=routes)
    routes.write_text("targets:\n  zd:\n    type: zendesk\n    subdomian: acme\nroutes: []\n")
    with pytest.raises(ConfigError, match=r"unknown option.*subdomian"):
        build_router(routes_path=routes)
