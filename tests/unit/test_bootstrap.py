"""What producers put on the broker besides the payload: task names, queues and the argument repr."""

from __future__ import annotations

from typing import Any

from tests.unit.test_pipeline import conversation
from worker import bootstrap
from worker.pipeline import history_events


class FakeApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


def test_task_events_name_an_event_by_its_id_not_its_body() -> None:
    app = FakeApp()
    event = history_events(conversation())[0].model_dump(mode="json")
    bootstrap.send_event(event, app)
    name, options = app.sent[0]
    assert name == bootstrap.HANDLE_EVENT
    assert options["args"] == [event]
    assert options["argsrepr"] == repr([f"history:{event['event_id']}"])
    assert event["message"]["body"][:20] not in options["argsrepr"]
    bootstrap.send_event("{not json", app)
    assert app.sent[1][1]["argsrepr"] == "['raw payload']"


def test_task_events_name_a_delivery_by_its_id() -> None:
    app = FakeApp()
    job = {"delivery_id": "msg_abc", "target": "webhook", "verdict": {"excerpt": "I'm so sorry"}, "event": "e"}
    bootstrap.send_delivery(job, app, countdown=3.0)
    name, options = app.sent[0]
    assert (name, options["args"], options["countdown"]) == (bootstrap.DELIVER, [job], 3.0)
    assert options["argsrepr"] == "['msg_abc']"
    assert options["kwargsrepr"] == "{}"
