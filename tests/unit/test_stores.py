"""Redis stores on fakeredis (with lupa for the Lua scripts)."""

from __future__ import annotations

import fakeredis
import pytest

from tests.conftest import agent, customer
from worker.stores import Stores


@pytest.fixture()
def stores() -> Stores:
    return Stores(fakeredis.FakeRedis(), memory_messages=3, clock=lambda: 1_000_000.0)


def test_an_event_is_new_once_then_done_after_it_is_finished(stores: Stores) -> None:
    m = customer("My order is late", "c1")
    first = stores.take_event("zendesk", "e1", "T1", [m], "tok")
    assert first.status == "new"
    assert stores.take_event("zendesk", "e1", "T1", [m], "other").status == "busy"
    stores.finish_event("zendesk", "e1", "tok")
    assert stores.take_event("zendesk", "e1", "T1", [m], "other").status == "done"
    # The same id from another source is another event.
    assert stores.take_event("freshdesk", "e1", "T1", [m], "tok").status == "new"


def test_an_unfinished_event_is_taken_again_after_its_lock_is_released(stores: Stores) -> None:
    m = customer("hello", "c1")
    assert stores.take_event("s", "e1", "T1", [m], "tok").status == "new"
    stores.finish_event("s", "e1", "tok", done=False)  # the worker gave up without effects
    assert stores.take_event("s", "e1", "T1", [m], "tok2").status == "new"


def test_a_lock_left_by_the_same_task_is_taken_back_not_waited_out(stores: Stores) -> None:
    """A Redis restart mid-task left the event's lock (append-only file on) and the task, run again under its
    own id, waited for it to expire as if another worker held it: up to two minutes late."""
    m = customer("hello", "c1")
    assert stores.take_event("s", "e1", "T1", [m], "task-1").status == "new"  # then the task failed
    assert stores.take_event("s", "e1", "T1", [m], "task-2").status == "busy"  # another task still waits
    assert stores.take_event("s", "e1", "T1", [m], "task-1").status == "new"  # the same task takes it back
    assert stores.begin_delivery("d1", "task-9") == "go"
    assert stores.begin_delivery("d1", "task-8") == "busy"
    assert stores.begin_delivery("d1", "task-9") == "go"


def test_finish_now_marks_done_in_the_same_step(stores: Stores) -> None:
    m = customer("hello", "c1")
    assert stores.take_event("s", "e1", "T1", [m], "tok", finish=True).status == "new"
    assert stores.take_event("s", "e1", "T1", [m], "tok").status == "done"


def test_memory_is_idempotent_ordered_and_bounded(stores: Stores) -> None:
    messages = [customer("one", "c1", 0), agent("two", "a1", 5), customer("three", "c2", 10),
                agent("four", "a2", 15)]
    for i, m in enumerate(reversed(messages)):
        stores.take_event("s", f"e{i}", "T1", [m], "tok", finish=True)
    stores.take_event("s", "again", "T1", [messages[-1]], "tok", finish=True)
    assert [m.id for m in stores.conversation("T1")] == ["a1", "c2", "a2"]  # the last 3, in time order
    taken = stores.take_event("s", "e9", "T1", [agent("five", "a3", 20)], "tok")
    assert [m.id for m in taken.conversation] == ["c2", "a2", "a3"]


def test_a_reply_waits_while_an_older_message_of_its_ticket_is_queued(stores: Stores) -> None:
    c, a = customer("broken", "c1", 0), agent("sorry", "a1", 10)
    stores.add_pending([("T1", "c1", c.created_at.timestamp()), ("T1", "a1", a.created_at.timestamp())])
    waited = stores.take_event("s", "ea", "T1", [a], "tok", wait_before=a.created_at.timestamp())
    assert (waited.status, waited.waiting) == ("wait", 1)
    assert stores.conversation("T1") == []  # nothing remembered while waiting
    stores.take_event("s", "ec", "T1", [c], "tok", finish=True)
    assert stores.pending("T1") == ["a1"]
    taken = stores.take_event("s", "ea", "T1", [a], "tok", wait_before=a.created_at.timestamp())
    assert taken.status == "new"
    assert [m.id for m in taken.conversation] == ["c1", "a1"]
    assert stores.pending("T1") == []


def test_stale_pending_entries_stop_blocking(stores: Stores) -> None:
    now = [1_000_000.0]
    stores.clock = lambda: now[0]
    stores.add_pending([("T1", "lost", 0.0)])
    a = agent("sorry", "a1", 10)
    assert stores.take_event("s", "e", "T1", [a], "t", wait_before=a.created_at.timestamp()).status == "wait"
    now[0] += stores.pending_stale + 1
    assert stores.take_event("s", "e", "T1", [a], "t", wait_before=a.created_at.timestamp()).status == "new"


def test_a_duplicate_event_drops_its_pending_entry(stores: Stores) -> None:
    c = customer("hi", "c1")
    stores.take_event("s", "e1", "T1", [c], "tok", finish=True)
    stores.add_pending([("T1", "c1", c.created_at.timestamp())])  # sent again by the producer
    assert stores.take_event("s", "e1", "T1", [c], "tok").status == "done"
    assert stores.pending("T1") == []


def test_deliveries_are_claimed_once_and_recorded_after_success(stores: Stores) -> None:
    assert stores.begin_delivery("d1", "tok") == "go"
    assert stores.begin_delivery("d1", "other") == "busy"
    stores.finish_delivery("d1", "tok", delivered=False)
    assert stores.begin_delivery("d1", "tok") == "go"
    stores.finish_delivery("d1", "tok", delivered=True)
    assert stores.begin_delivery("d1", "tok") == "delivered"
    assert stores.was_delivered("d1")


def test_dead_letters_keep_reason_and_truncated_payload(stores: Stores) -> None:
    stores.payload_max = 300
    letter_id = stores.add_dead_letter("event", "not valid JSON", "x" * 1000)
    other = stores.add_dead_letter("delivery", "refused: HTTP 400", {"delivery_id": "d"}, status=400)
    assert stores.dead_letter_count() == 2
    letter = stores.dead_letter(letter_id)
    assert letter is not None
    assert len(letter.payload) == 300
    assert letter.details["truncated_from"] == 1000
    assert {d.id for d in stores.dead_letters()} == {letter_id, other}
    assert stores.remove_dead_letter(letter_id)
    assert stores.dead_letter(letter_id) is None
    assert stores.dead_letter_count() == 1
