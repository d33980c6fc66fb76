"""Sample helpdesk payloads (tests/fixtures/helpdesks, invented data) and a verdict builder for targets."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from worker.models import Context, Finding, PolicyRef, Signals, Verdict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "helpdesks"


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture, so a test may edit it freely."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


GENERIC = Finding(rule="generic-apology", severity="warning",
                  message="The apology names no specific problem.", span=(9, 36),
                  excerpt="sorry for any inconvenience",
                  suggestion='Name what went wrong: "I\'m sorry your order arrived broken."')
LIABILITY = Finding(rule="liability-admission", severity="critical", message="The reply admits fault.",
                    span=(40, 58), excerpt="this was our fault",
                    suggestion="Own the fix, not the blame: \"Here's what I've done to put this right.\"")


def verdict(*, action: str = "annotate", findings: tuple[Finding, ...] = (GENERIC,), legal_risk: bool = False,
            liability: bool = False, blame: bool = False, frustration: float = 0.4, score: int = 72,
            ticket_id: str = "5158", message_id: str = "9876543210") -> Verdict:
    return Verdict(
        ticket_id=ticket_id, message_id=message_id, agent_id="8447388090495",
        policy=PolicyRef(name="liability-aware", version="sha256:1f0c9a8b7c6d5e4f3a2b1c0d"),
        context=Context(incident="defect", frustration=frustration, legal_risk=legal_risk,
                        customer_message_id="c-9870"),
        signals=Signals(apology="generic", apology_stance="empathy", apology_count=1,
                        liability_admission=liability, blame=blame, empathy=False, solution=True,
                        prevention=False, response_minutes=41.0),
        findings=list(findings), score=score, action=action,  # type: ignore[arg-type]
    )


def render_template(path: Path, values: dict[str, str]) -> bytes:
    """A shipped webhook body template as the helpdesk would send it: every placeholder replaced."""
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", json.dumps(value)[1:-1])
    assert "{{" not in text, "a placeholder of the shipped template has no sample value"
    return text.encode()


EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
