"""What people read: the internal note and the escalation reasons."""

from __future__ import annotations

from tests.support.payloads import GENERIC, LIABILITY, verdict
from worker.targets.notes import (
    NOTE_SIGNATURE,
    escalation_reasons,
    is_own_note,
    note_html,
    note_text,
    ticket_link,
    ticket_tags,
)


def test_note_is_short_and_readable() -> None:
    assert note_text(verdict(findings=(GENERIC, LIABILITY))) == "\n".join([
        "Apology review: 2 findings, score 72/100, for the agent's attention",
        "• Critical · liability-admission: The reply admits fault.",
        "  Reply: “this was our fault”",
        "  Try: Own the fix, not the blame: \"Here's what I've done to put this right.\"",
        "• Warning · generic-apology: The apology names no specific problem.",
        "  Reply: “sorry for any inconvenience”",
        "  Try: Name what went wrong: \"I'm sorry your order arrived broken.\"",
        f"{NOTE_SIGNATURE} · policy liability-aware (sha256:1f0c9a8b7c6d…)",
    ])


def test_html_note_escapes_what_the_agent_wrote() -> None:
    html = note_html(verdict(findings=(GENERIC.model_copy(update={"excerpt": "<script>x</script>"}),)))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert is_own_note(html)


def test_escalation_says_why_now() -> None:
    assert escalation_reasons(verdict(action="escalate", legal_risk=True, liability=True, findings=())) == [
        "Legal risk: the customer mentions legal action, a lawyer, an injury or a regulator, and the reply "
        "admits fault"]
    assert escalation_reasons(verdict(action="escalate", legal_risk=True, blame=True, findings=())) == [
        "Legal risk: the customer mentions legal action, a lawyer, an injury or a regulator, and the reply "
        "blames the customer"]
    assert escalation_reasons(verdict(action="escalate", findings=(), score=20)) == [
        "Policy liability-aware escalates this reply (score 20/100)"]
    assert "Why now: Liability: the reply admits fault in writing" in note_text(
        verdict(action="escalate", liability=True, findings=()))


def test_many_findings_are_summarised() -> None:
    text = note_text(verdict(findings=(GENERIC,) * 7))
    assert text.count("• ") == 5 and "…and 2 more findings" in text


def test_tags_are_helpdesk_safe_and_links_are_quoted() -> None:
    odd = GENERIC.model_copy(update={"rule": "Odd Rule/Name"})
    assert ticket_tags(verdict(action="escalate", findings=(odd, odd))) == [
        "apology-review", "apology-escalated", "apology-odd-rule-name"]
    assert ticket_link("https://h.example/t/{ticket_id}", "a b/c") == "https://h.example/t/a%20b%2Fc"
    assert ticket_link(None, "1") is None
