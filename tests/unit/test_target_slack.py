"""Slack target: blocks people read, with a plain text fallback."""

from __future__ import annotations

import json

from tests.support.payloads import GENERIC, LIABILITY, verdict
from worker.targets.slack import SlackTarget

URL = "https://hooks.slack.com/services/T000/B000/XXXX"
TARGET = SlackTarget(webhook_url=URL, ticket_url="https://acme.zendesk.com/agent/tickets/{ticket_id}")


def test_builds_the_exact_message() -> None:
    v = verdict(action="escalate", findings=(LIABILITY, GENERIC), legal_risk=True, liability=True)
    req = TARGET.build(v, "msg_abc")
    assert (req.method, req.url, req.headers) == ("POST", URL, {"Content-Type": "application/json"})
    body = json.loads(req.body)
    assert body["text"] == ("Ticket 5158: Legal risk: the customer mentions legal action, a lawyer, an "
                            "injury or a regulator, and the reply admits fault; Critical: The reply "
                            "admits fault. https://acme.zendesk.com/agent/tickets/5158")
    assert body["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "Escalation: ticket 5158"}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            "*<https://acme.zendesk.com/agent/tickets/5158|Open ticket 5158>* · Apology review: 2 findings, "
            "score 72/100, escalated to a supervisor\n*Why now:* Legal risk: the customer mentions legal "
            "action, a lawyer, an injury or a regulator, and the reply admits fault; Critical: The reply "
            "admits fault."}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            "*Critical · liability-admission*: The reply admits fault.\n> this was our fault\n"
            "*Suggestion:* Own the fix, not the blame: \"Here's what I've done to put this right.\""}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            "*Warning · generic-apology*: The apology names no specific problem.\n> sorry for any "
            "inconvenience\n*Suggestion:* Name what went wrong: \"I'm sorry your order arrived broken.\""}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            "Reviewed by apology-worker · policy liability-aware (sha256:1f0c9a8b7c6d…) · msg_abc"}]},
    ]


def test_annotation_fallback_and_mrkdwn_escaping() -> None:
    finding = GENERIC.model_copy(update={"excerpt": "sorry <b> & co"})
    body = json.loads(SlackTarget(webhook_url=URL).build(verdict(findings=(finding,)), "m").body)
    assert body["text"] == "Ticket 5158: Apology review: 1 finding, score 72/100, for the agent's attention"
    assert "> sorry &lt;b&gt; &amp; co" in body["blocks"][2]["text"]["text"]
    assert body["blocks"][1]["text"]["text"].startswith("*Ticket 5158*")


def test_long_excerpts_stay_within_slack_limits() -> None:
    finding = GENERIC.model_copy(update={"message": "x" * 5000})
    blocks = json.loads(SlackTarget(webhook_url=URL).build(verdict(findings=(finding,)), "m").body)["blocks"]
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
