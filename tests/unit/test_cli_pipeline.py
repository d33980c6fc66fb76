"""`enqueue` and `dead-letters`, with fakeredis and a list standing in for the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest

from worker import bootstrap
from worker.cli import main
from worker.settings import load_settings
from worker.stores import Stores

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples" / "tickets.jsonl"


@pytest.fixture()
def broker(monkeypatch: pytest.MonkeyPatch) -> tuple[Stores, list[Any], list[Any]]:
    stores = Stores(fakeredis.FakeRedis())
    events: list[Any] = []
    jobs: list[Any] = []
    monkeypatch.setattr(bootstrap, "settings", lambda: load_settings())
    monkeypatch.setattr(bootstrap, "stores", lambda cfg: stores)
    monkeypatch.setattr(bootstrap, "send_event", events.append)
    monkeypatch.setattr(bootstrap, "send_delivery", jobs.append)
    return stores, events, jobs


def test_enqueue_sends_every_message_in_order_with_derived_ids(broker: tuple[Stores, list[Any], list[Any]],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    stores, events, _ = broker
    assert main(["enqueue", str(EXAMPLES)]) == 0
    assert "enqueued" in capsys.readouterr().out
    first = events[0]
    assert first["source"] == "history"
    assert first["event_id"] == f"{first['ticket']['id']}/{first['message']['id']}"
    ids = [e["event_id"] for e in events]
    assert main(["enqueue", str(EXAMPLES)]) == 0
    assert [e["event_id"] for e in events[len(ids):]] == ids  # the same ids: deduplicated downstream
    assert stores.pending(first["ticket"]["id"])


def test_enqueue_reports_unreadable_lines(broker: tuple[Stores, list[Any], list[Any]],
                                          tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    assert main(["enqueue", str(bad)]) == 3


def test_dead_letters_list_show_replay(broker: tuple[Stores, list[Any], list[Any]],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    stores, events, jobs = broker
    event_letter = stores.add_dead_letter("event", "not valid JSON", "{nope")
    job_letter = stores.add_dead_letter("delivery", "refused: HTTP 400", {"delivery_id": "d1"}, status=400)
    assert main(["dead-letters", "list"]) == 0
    out = capsys.readouterr().out
    assert event_letter in out and job_letter in out and "2 dead letters" in out
    assert main(["dead-letters", "show", job_letter]) == 0
    assert '"status": 400' in capsys.readouterr().out
    assert main(["dead-letters", "show", "missing"]) == 1
    assert main(["dead-letters", "replay", job_letter]) == 0
    assert jobs == [{"delivery_id": "d1"}]
    assert main(["dead-letters", "replay", "--all"]) == 0
    assert events == ["{nope"]
    assert stores.dead_letter_count() == 0
