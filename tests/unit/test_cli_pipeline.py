"""`enqueue` and `dead-letters`, with fakeredis and a list standing in for the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest

from worker import bootstrap
from worker.cli import main
from worker.journal import KINDS
from worker.pipeline import ticket_key
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
    assert stores.pending(ticket_key("history", first["ticket"]["id"]))


def test_enqueue_waits_out_a_redis_restart_mid_file_and_finishes(broker: tuple[Stores, list[Any], list[Any]],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """It stopped at "cannot reach Redis" half way through, without saying what it had sent."""
    import redis

    _, events, _ = broker
    assert main(["enqueue", str(EXAMPLES)]) == 0
    expected = [e["event_id"] for e in events]
    events.clear()
    first_ticket = expected[0].split("/")[0]
    failed: list[str] = []

    def restarting(payload: dict[str, Any]) -> None:
        if payload["ticket"]["id"] != first_ticket and not failed:  # the second ticket's first send
            failed.append(payload["event_id"])
            raise redis.ConnectionError("Connection refused")
        events.append(payload)

    monkeypatch.setattr(bootstrap, "send_event", restarting)
    assert main(["enqueue", str(EXAMPLES)]) == 0
    out = capsys.readouterr()
    assert f"enqueued {len(expected)} events" in out.out
    assert "enqueue: Redis unreachable (ConnectionError)" in out.err and "Redis is back" in out.err
    assert [e["event_id"] for e in events] == expected  # every event, in order, none lost


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


def test_dead_letters_drop_deletes_without_replaying(broker: tuple[Stores, list[Any], list[Any]],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """They hold message text: an operator deletes one, those past a retention period, or all."""
    stores, events, jobs = broker
    now = [1_800_000_000.0]
    stores.clock = lambda: now[0]
    old = stores.add_dead_letter("event", "not valid JSON", "{nope")
    now[0] += 40 * 86_400
    recent = stores.add_dead_letter("delivery", "refused: HTTP 400", {"delivery_id": "d1"})
    newest = stores.add_dead_letter("delivery", "refused: HTTP 400", {"delivery_id": "d2"})
    now[0] += 86_400
    assert main(["dead-letters", "drop", "--older-than", "30"]) == 0
    assert "dropped 1 dead letters; 2 kept" in capsys.readouterr().out
    assert stores.dead_letter(old) is None and stores.dead_letter(recent) is not None
    assert main(["dead-letters", "drop", recent]) == 0 and main(["dead-letters", "drop", recent]) == 1
    assert stores.dead_letter(newest) is not None
    assert main(["dead-letters", "drop", ""]) == 1  # an empty id is no id, not "all of them"
    assert main(["dead-letters", "drop", "--all"]) == 0
    assert stores.dead_letter_count() == 0 and events == [] and jobs == []


def test_enqueue_and_replay_journal_what_they_send(broker: tuple[Stores, list[Any], list[Any]]) -> None:
    stores, events, _ = broker
    assert main(["enqueue", str(EXAMPLES)]) == 0
    assert stores.journal.size() == len(events)
    for event in events:
        stores.journal.settle("event", f"{event['source']}:{event['event_id']}")
    letter = stores.add_dead_letter("delivery", "gave up", {"delivery_id": "d9"})
    assert main(["dead-letters", "replay", letter]) == 0
    assert [e.key for e in stores.journal.due(stores.clock() + 1, 10)] == ["d9"]


def test_reconcile_dry_run_lists_what_it_would_send_again(broker: tuple[Stores, list[Any], list[Any]],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from worker import reconcile

    stores, _, _ = broker
    stores.journal.record([("event", "zendesk:zd-1-2", [{"event_id": "zd-1-2"}])])
    stores.journal.note_drained(stores.clock() + 10)
    published: list[Any] = []

    def sweeper(cfg: Any) -> Any:
        def run(dry_run: bool = False) -> reconcile.Sweep:
            return reconcile.sweep(stores, look=lambda held: reconcile.BrokerView(frozenset(KINDS), frozenset()),
                                   publish=lambda k, a: published.append(a), safe_age=0, max_sends=5,
                                   dry_run=dry_run, now=stores.clock() + 20)
        return stores, run

    monkeypatch.setattr(bootstrap, "sweeper", sweeper)
    assert main(["reconcile", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would send again: 1" in out and "zendesk:zd-1-2" in out
    assert published == [] and stores.journal.size() == 1
    assert main(["reconcile"]) == 0
    assert "sent again: 1" in capsys.readouterr().out
    assert published == [[{"event_id": "zd-1-2"}]]


def test_a_command_that_cannot_reach_redis_says_so_and_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APOLOGY_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    history = tmp_path / "h.jsonl"
    history.write_text(EXAMPLES.read_text().splitlines()[0] + "\n")
    assert main(["enqueue", str(history)]) == 2
    assert "cannot reach Redis (APOLOGY_BROKER_URL)" in capsys.readouterr().err


def test_a_command_that_finds_redis_full_says_so_and_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             redis_srv: Any) -> None:
    """A Redis at its memory limit answers but refuses writes: "cannot reach" would send the user looking
    for a network fault."""
    import redis

    redis.Redis.from_url(redis_srv.url).config_set("maxmemory", "1")
    monkeypatch.setenv("APOLOGY_BROKER_URL", redis_srv.url)
    monkeypatch.setattr(bootstrap, "settings", lambda: load_settings())  # not the process's cached settings
    history = tmp_path / "h.jsonl"
    history.write_text(EXAMPLES.read_text().splitlines()[0] + "\n")
    assert main(["enqueue", str(history)]) == 2
    err = capsys.readouterr().err
    assert "Redis is full (APOLOGY_BROKER_URL)" in err and "maxmemory" in err
