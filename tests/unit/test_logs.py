"""Logs: redaction, no bodies at INFO, context ids through contextvars."""

from __future__ import annotations

import pytest

from tests.conftest import json_logs
from worker import logs


@pytest.mark.parametrize("text, expected", [
    ("write to dana.lee@example.com please", "write to [email] please"),
    ("card 4111 1111 1111 1111 was charged", "card [card] was charged"),
    ("call +44 20 7946 0958 now", "call [phone] now"),
    ("call 555-123-4567", "call [phone]"),
    ("order #44812 of 2026-11-20", "order #44812 of 2026-11-20"),
    ("ticket 5158 took 41.5 ms", "ticket 5158 took 41.5 ms"),
    ("task e582c7a1-4471-4d6e-a53f-3937a0dce273", "task e582c7a1-4471-4d6e-a53f-3937a0dce273"),
])
def test_redaction(text: str, expected: str) -> None:
    assert logs.redact_text(text) == expected


def test_lines_are_json_with_context_and_without_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    with json_logs(capsys) as lines:
        log = logs.get_logger("test")
        with logs.task_context(task_id="t-1"):
            logs.bind(event_id="zendesk:e1", ticket_id="T1", message_id="m1")
            log.info("reply judged", body="I'm sorry, Dana (dana@example.com)", note="mail dana@example.com")
        log.info("after")
        first, after = lines()
    assert first["event"] == "reply judged"
    assert (first["task_id"], first["event_id"], first["ticket_id"], first["message_id"]) == (
        "t-1", "zendesk:e1", "T1", "m1")
    assert first["body"] == "[dropped]"
    assert first["note"] == "mail [email]"
    assert "task_id" not in after  # nothing leaks from one task into the next
