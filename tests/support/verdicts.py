"""Build verdicts by hand for report tests: only what a test cares about, the rest a neutral default."""

from __future__ import annotations

from typing import Any

from worker.models import Context, Finding, PolicyRef, Signals, Verdict


def finding(rule: str, severity: str = "warning", excerpt: str = "sorry for any inconvenience",
            suggestion: str | None = "Name what went wrong.") -> Finding:
    return Finding(rule=rule, severity=severity, message=f"{rule} fired", span=(0, len(excerpt)),  # type: ignore[arg-type]
                   excerpt=excerpt, suggestion=suggestion)


def verdict(ticket: str, message: str = "a1", *, agent: str | None = "a-1", policy: str = "liability-aware",
            findings: tuple[Finding, ...] = (), score: int = 100, action: str = "none",
            frustration: float = 0.5, **signals: Any) -> Verdict:
    base: dict[str, Any] = {"apology": "none", "apology_stance": None, "apology_count": 0,
                            "liability_admission": False, "blame": False, "empathy": False, "solution": False,
                            "prevention": False, "response_minutes": None}
    base.update(signals)
    if base["apology"] != "none" and base["apology_stance"] is None:
        base["apology_stance"] = "empathy"
    return Verdict(
        ticket_id=ticket, message_id=message, agent_id=agent,
        policy=PolicyRef(name=policy, version="sha256:test"),
        context=Context(incident="defect", frustration=frustration, legal_risk=False,
                        customer_message_id="c1"),
        signals=Signals(**base), findings=list(findings), score=score, action=action,  # type: ignore[arg-type]
    )
