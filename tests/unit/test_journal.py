"""The journal of published messages and its reconciler, on fakeredis: every producer path journals,
every final state settles, and only what was lost between the queue and a worker is published again."""

from __future__ import annotations

from typing import Any

import fakeredis
import httpx
import pytest

from tests.unit.test_pipeline import Harness, conversation
from worker.engine import Policy
from worker.journal import Kind, entry_key, event_key
from worker.pipeline import deliver, handle_event, history_events
from worker.reconcile import PUBLISH_SLACK_SECONDS, sweep
from worker.stores import Stores


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def unsettled(stores: Stores) -> set[str]:
    return {k.decode() for k in stores.redis.zrange("aw:journal", 0, -1)}


def test_submitted_events_are_journalled_and_settled_by_their_final_state(policy: Policy) -> None:
    h = Harness(policy)
    stores = h.deps.stores
    c_event, a_event = h.submit(history_events(conversation()))
    keys = {entry_key("event", event_key("history", e["event_id"])) for e in (c_event, a_event)}
    assert unsettled(stores) == keys
    assert handle_event(c_event, h.deps).status == "remembered"  # final at once
    assert handle_event(a_event, h.deps).status == "judged"
    delivery = entry_key("delivery", h.queue[0]["delivery_id"])
    assert unsettled(stores) == {delivery}  # the events are settled, their delivery journalled
    assert deliver(h.queue[0], h.deps).status == "delivered"
    assert unsettled(stores) == set()
    # The same events again (a helpdesk retry, the same file enqueued twice): settled as duplicates.
    again = h.submit(history_events(conversation()))
    assert len(unsettled(stores)) == 2
    assert [handle_event(e, h.deps).status for e in again] == ["duplicate", "duplicate"]
    assert unsettled(stores) == set()


def test_a_waiting_or_busy_event_stays_journalled_and_is_due_after_its_retry(policy: Policy) -> None:
    h = Harness(policy)
    _, a_event = h.submit(history_events(conversation()))
    key = entry_key("event", event_key("history", a_event["event_id"]))
    before = h.deps.stores.redis.zscore("aw:journal", key)
    assert handle_event(a_event, h.deps).status == "waiting"  # its customer message is still queued
    after = h.deps.stores.redis.zscore("aw:journal", key)
    assert before is not None and after is not None and after > before


def test_a_delivery_retried_stays_journalled_and_a_dead_letter_settles_it(policy: Policy) -> None:
    h = Harness(policy, respond=lambda r: httpx.Response(500))
    c_event, a_event = h.submit(history_events(conversation()))
    handle_event(c_event, h.deps)
    handle_event(a_event, h.deps)
    job = h.queue[0]
    key = entry_key("delivery", job["delivery_id"])
    first = h.deps.stores.redis.zscore("aw:journal", key)
    assert deliver(job, h.deps).status == "retry"
    assert h.deps.stores.redis.zscore("aw:journal", key) > first  # type: ignore[operator]
    assert deliver(job, h.deps, attempt=9).status == "dead"
    assert unsettled(h.deps.stores) == set()


def test_a_rejected_event_that_names_itself_settles_its_entry(policy: Policy) -> None:
    h = Harness(policy)
    (event,) = h.submit(history_events(conversation())[:1])
    broken = {**event, "message": {"id": 7}}  # what an older worker might not understand
    assert handle_event(broken, h.deps).status == "rejected"
    assert unsettled(h.deps.stores) == set()


class Broker:
    """The queue as the reconciler sees it, and what it published."""

    def __init__(self) -> None:
        self.empty = False
        self.published: list[tuple[Kind, list[Any]]] = []

    def publish(self, kind: Kind, args: list[Any]) -> None:
        self.published.append((kind, args))


def run(stores: Stores, broker: Broker, clock: Clock, **kw: Any) -> Any:
    return sweep(stores, queues_empty=lambda: broker.empty, publish=broker.publish,
                 safe_age=kw.pop("safe_age", 60), max_sends=kw.pop("max_sends", 2), now=clock.now, **kw)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def stores(clock: Clock) -> Stores:
    return Stores(fakeredis.FakeRedis(), clock=clock)


def test_nothing_is_sent_again_while_the_queue_has_not_been_seen_empty(stores: Stores, clock: Clock) -> None:
    broker = Broker()
    stores.journal.record([("event", "src:lost", [{"event_id": "lost"}])])
    for _ in range(10):  # a backlog: the entry is old, but its message may still be queued
        clock.now += 60
        assert run(stores, broker, clock).cutoff is None
    assert broker.published == []


def test_an_entry_published_before_the_queue_drained_is_sent_again_a_safe_age_later(
        stores: Stores, clock: Clock) -> None:
    broker = Broker()
    stores.journal.record([("event", "src:lost", [{"event_id": "lost"}])])
    clock.now += PUBLISH_SLACK_SECONDS + 1
    broker.empty = True
    run(stores, broker, clock)  # the queue is empty now: the message was taken (and lost)
    drained = clock.now
    broker.empty = False  # and busy from now on, with work published after it
    stores.journal.record([("event", "src:later", [{"event_id": "later"}])])
    clock.now = drained + 59
    assert run(stores, broker, clock).resent == ()  # not a safe age yet
    clock.now = drained + 60
    swept = run(stores, broker, clock)
    assert [e.key for e in swept.resent] == ["src:lost"]
    assert broker.published == [("event", [{"event_id": "lost"}])]
    stores.journal.settle("event", "src:later")  # its work was done
    # Lost again: sent again once the queue was seen empty after it, a safe age later; after
    # `max_sends` re-sends it is dead-lettered for a person to look at.
    broker.empty = True
    clock.now += PUBLISH_SLACK_SECONDS + 1
    assert run(stores, broker, clock).resent == ()
    clock.now += 60
    assert [e.key for e in run(stores, broker, clock).resent] == ["src:lost"]
    clock.now += PUBLISH_SLACK_SECONDS + 1
    run(stores, broker, clock)
    clock.now += 60
    swept = run(stores, broker, clock)
    assert [e.key for e in swept.dead] == ["src:lost"]
    letter = stores.dead_letters()[0]
    assert letter.kind == "event" and letter.payload == {"event_id": "lost"}
    assert "re-sends" in letter.reason
    assert broker.published == [("event", [{"event_id": "lost"}])] * 2
    assert unsettled(stores) == set()


def test_a_dry_run_sends_nothing_and_records_nothing(stores: Stores, clock: Clock) -> None:
    broker = Broker()
    stores.journal.record([("delivery", "msg_1", [{"delivery_id": "msg_1"}])])
    clock.now += 10
    broker.empty = True
    assert run(stores, broker, clock, dry_run=True).cutoff is None  # a dry run records no observation
    run(stores, broker, clock)
    clock.now += 60
    swept = run(stores, broker, clock, dry_run=True)
    assert [e.key for e in swept.resent] == ["msg_1"]
    assert broker.published == []
    assert stores.journal.due(clock.now, 10)[0].sends == 0


def test_a_retry_scheduled_far_out_is_not_due_before_it_runs(stores: Stores, clock: Clock) -> None:
    broker = Broker()
    stores.journal.record([("delivery", "msg_2", [{}])], due_in=600)  # a rate-limited backfill delivery
    broker.empty = True
    run(stores, broker, clock)
    clock.now += 300
    run(stores, broker, clock)
    clock.now += 300
    assert run(stores, broker, clock).resent == ()
    clock.now += 400
    assert run(stores, broker, clock).resent == ()  # seen empty after it was due, but not a safe age ago
    clock.now += 60
    assert [e.key for e in run(stores, broker, clock).resent] == ["msg_2"]


def test_an_expired_entry_leaves_the_index(stores: Stores, clock: Clock) -> None:
    stores.journal.record([("event", "src:gone", [{}])])
    stores.redis.delete(entry_key("event", "src:gone"))  # what its TTL does
    assert stores.journal.due(clock.now + 1, 10) == []
    assert stores.journal.size() == 0


def test_one_sweep_per_interval_over_all_workers(stores: Stores) -> None:
    assert stores.journal.take_sweep(5)
    assert not stores.journal.take_sweep(5)
