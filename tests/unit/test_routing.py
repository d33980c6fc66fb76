"""Routing: the implicit webhook route and a routes file by action, severity and team."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.models import Context, Finding, PolicyRef, Signals, Ticket, Verdict
from worker.routing import build_router

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def verdict(action: str, severities: tuple[str, ...] = ()) -> Verdict:
    return Verdict(
        ticket_id="T1", message_id="m1", agent_id="a1", policy=PolicyRef(name="p", version="sha256:1"),
        context=Context(incident="defect", frustration=0.5, legal_risk=False),
        signals=Signals(apology="none", apology_stance=None, apology_count=0, liability_admission=False,
                        blame=False, empathy=False, solution=False, prevention=False, response_minutes=None),
        findings=[Finding(rule=f"r{i}", severity=s, message="m", span=(0, 1), excerpt="x")  # type: ignore[arg-type]
                  for i, s in enumerate(severities)],
        score=50, action=action,  # type: ignore[arg-type]
    )


def test_the_webhook_url_routes_annotations_and_escalations() -> None:
    router = build_router("https://hooks.example.com/a", SECRET)
    t = Ticket(id="T1")
    assert router.destinations(verdict("annotate"), t) == ["webhook"]
    assert router.destinations(verdict("escalate"), t) == ["webhook"]
    assert router.destinations(verdict("none"), t) == []


def test_a_routes_file_routes_by_action_severity_and_team(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_SECRET", SECRET)
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""
targets:
  helpdesk: {{type: webhook, url: "https://helpdesk.example.com/h", secret: "{SECRET}"}}
  supervisors: {{type: webhook, url: "https://sup.example.com/h", secret_env: SUPERVISOR_SECRET}}
routes:
  - targets: [helpdesk]
  - name: critical billing escalations
    targets: [supervisors, helpdesk]
    actions: [escalate]
    min_severity: critical
    teams: [billing]
""")
    router = build_router(routes_path=routes)
    billing, returns = Ticket(id="T1", team="billing"), Ticket(id="T2", team="returns")
    assert router.destinations(verdict("annotate", ("warning",)), billing) == ["helpdesk"]
    assert router.destinations(verdict("escalate", ("critical",)), billing) == ["helpdesk", "supervisors"]
    assert router.destinations(verdict("escalate", ("warning",)), billing) == ["helpdesk"]
    assert router.destinations(verdict("escalate", ("critical",)), returns) == ["helpdesk"]


@pytest.mark.parametrize("text, message", [
    ("routes: [{targets: [nowhere]}]", "unknown target 'nowhere'"),
    ("targets: {x: {type: carrier-pigeon}}", "targets.x.type"),
    ("targets: {x: {type: pigeon}}", "unknown target type 'pigeon'"),
    ("targets: {x: {type: webhook, url: 'ftp://x', secret: s}}", "url must be an http"),
    ("targets: {x: {type: webhook, url: 'https://x.test'}}", "exactly one of secret"),
    ("routes: [{targets: [x], actions: [shout]}]", "routes.0.actions.0"),
    ("targets: [", "not valid YAML"),
])
def test_routes_file_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_router(routes_path=path)


def test_the_shipped_example_routes_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SUPERVISORS_WEBHOOK_SECRET", SECRET)
    router = build_router(routes_path=Path(__file__).resolve().parents[2] / "config" / "routes.example.yaml")
    assert router.destinations(verdict("escalate", ("critical",)), Ticket(id="T", team="billing")) == [
        "helpdesk", "supervisors"]
