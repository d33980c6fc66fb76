"""PagerDuty target: Events API v2 trigger for escalations, one incident per reply and policy version."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.support.payloads import LIABILITY, verdict
from worker.errors import DeliveryError
from worker.targets.pagerduty import PagerDutyTarget

TARGET = PagerDutyTarget(routing_key="R0UTINGKEY0000000000000000000000",
                         ticket_url="https://acme.zendesk.com/agent/tickets/{ticket_id}")


def test_builds_the_exact_event() -> None:
    v = verdict(action="escalate", findings=(LIABILITY,), legal_risk=True, liability=True, score=35)
    req = TARGET.build(v, "msg_abc")
    assert (req.method, req.url, req.headers) == (
        "POST", "https://events.pagerduty.com/v2/enqueue", {"Content-Type": "application/json"})
    expected_key = "apology-" + hashlib.sha256(
        b"5158|9876543210|sha256:1f0c9a8b7c6d5e4f3a2b1c0d").hexdigest()[:32]
    why = ["Legal risk: the customer mentions legal action, a lawyer, an injury or a regulator, and the "
           "reply admits fault", "Critical: The reply admits fault."]
    assert json.loads(req.body) == {
        "routing_key": "R0UTINGKEY0000000000000000000000",
        "event_action": "trigger",
        "dedup_key": expected_key,
        "client": "apology-worker",
        "payload": {
            "summary": "Ticket 5158: " + "; ".join(why),
            "source": "apology-worker", "severity": "critical", "component": "ticket 5158",
            "class": "apology-escalation",
            "custom_details": {
                "ticket_id": "5158", "message_id": "9876543210", "agent_id": "8447388090495", "why": why,
                "findings": ["Critical · liability-admission: The reply admits fault. "
                             "(“this was our fault”)"],
                "score": 35, "policy": "liability-aware sha256:1f0c9a8b7c6d…", "delivery_id": "msg_abc",
            },
        },
        "links": [{"href": "https://acme.zendesk.com/agent/tickets/5158", "text": "Open ticket 5158"}],
    }


def test_dedup_key_ignores_the_delivery_but_not_the_policy_version() -> None:
    v = verdict(action="escalate")
    first, retry = json.loads(TARGET.build(v, "msg_1").body), json.loads(TARGET.build(v, "msg_2").body)
    assert first["dedup_key"] == retry["dedup_key"]
    newer = v.model_copy(update={"policy": v.policy.model_copy(update={"version": "sha256:ffff"})})
    assert json.loads(TARGET.build(newer, "msg_1").body)["dedup_key"] != first["dedup_key"]


def test_severity_is_error_without_legal_exposure() -> None:
    body = json.loads(TARGET.build(verdict(action="escalate", blame=True, frustration=0.9), "m").body)
    assert body["payload"]["severity"] == "error"
    assert body["payload"]["summary"] == ("Ticket 5158: The reply argues with or blames the customer; "
                                          "The customer is very frustrated (0.90)")


def test_summary_respects_the_events_api_limit() -> None:
    findings = tuple(LIABILITY.model_copy(update={"message": c * 900}) for c in "abc")
    body = json.loads(TARGET.build(verdict(action="escalate", findings=findings), "m").body)
    assert len(body["payload"]["summary"]) == 1024


@pytest.mark.parametrize("action", ["annotate", "none"])
def test_only_escalations_page(action: str) -> None:
    with pytest.raises(DeliveryError) as err:
        TARGET.build(verdict(action=action), "m")
    assert err.value.permanent
