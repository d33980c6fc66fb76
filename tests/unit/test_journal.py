"""The journal of published messages and its reconciler, on fakeredis: every producer path journals,
every final state settles, and only what was lost between the queue and a worker is published again."""

from __future__ import annotations

from typing import Any

import fakeredis
import httpx
import pytest

from tests.unit.test_pipeline import Harness, conversation
from worker.engine import Policy
from worker.journal import KINDS, Kind, chunk_key, entry_key, event_key, key_of
from worker.pipeline import deliver, handle_event, history_events
from worker.reconcile import PUBLISH_SLACK_SECONDS, BrokerView, sweep
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
    """The broker as the reconciler sees it (queues empty or not, by kind; the journal keys of the messages
    workers hold), and what it published."""

    def __init__(self) -> None:
        self.empty = False
        self.busy: set[Kind] = set()  # with `empty`: the kinds whose queue is not
        self.held: set[str] = set()
        self.published: list[tuple[Kind, list[Any]]] = []

    def look(self, held: bool = True) -> BrokerView:
        idle = frozenset(KINDS) - self.busy if self.empty else frozenset()
        return BrokerView(frozenset(idle), frozenset(self.held))

    def publish(self, kind: Kind, args: list[Any]) -> None:
        self.published.append((kind, args))


def run(stores: Stores, broker: Broker, clock: Clock, **kw: Any) -> Any:
    return sweep(stores, look=broker.look, publish=broker.publish,
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


# -- found missing: in no queue and held by no worker, at every sweep for `missing_after` ---------------------
SAFE_AGE = 2_260  # the production default: the test by age cannot fire within these tests


def missing_run(stores: Stores, broker: Broker, clock: Clock, **kw: Any) -> Any:
    return run(stores, broker, clock, safe_age=SAFE_AGE, missing_after=30, **kw)


def test_a_message_in_no_queue_and_held_by_no_worker_is_sent_again_once_missing_that_long(
        stores: Stores, clock: Clock) -> None:
    """A BRPOP reply lost with its connection: the message is nowhere; sent again in a minute, not 38."""
    broker = Broker()
    broker.empty = True
    stores.journal.record([("event", "src:lost", [{"event_id": "lost"}])])
    clock.now += PUBLISH_SLACK_SECONDS  # not yet past the producer's slack: not looked at
    assert missing_run(stores, broker, clock).resent == ()
    clock.now += 1
    assert missing_run(stores, broker, clock).resent == ()  # first found missing now
    clock.now += 29
    assert missing_run(stores, broker, clock).resent == ()
    clock.now += 1
    swept = missing_run(stores, broker, clock)
    assert [e.key for e in swept.resent] == [e.key for e in swept.missing] == ["src:lost"]
    assert swept.cutoff is None  # the test by age had nothing to say
    assert broker.published == [("event", [{"event_id": "lost"}])]
    # Published again, and lost again: watched afresh from its re-send, and sent again up to max_sends.
    clock.now += PUBLISH_SLACK_SECONDS + 1
    assert missing_run(stores, broker, clock).resent == ()
    clock.now += 30
    assert len(missing_run(stores, broker, clock).resent) == 1
    # Then only the test by age, the one that dead-letters, acts on it: looking cannot tell work that never
    # ends from a message out of sight for longer than `missing_after`, and must not dead-letter live work.
    for _ in range(10):
        clock.now += 60
        assert missing_run(stores, broker, clock).resent == ()
    assert stores.dead_letter_count() == 0
    clock.now += SAFE_AGE
    swept = missing_run(stores, broker, clock)
    assert [e.key for e in swept.dead] == ["src:lost"] and swept.missing == ()
    assert unsettled(stores) == set()


def test_a_message_a_worker_holds_or_still_queued_is_never_sent_again_by_looking(
        stores: Stores, clock: Clock) -> None:
    """Held: prefetched, waiting out a countdown or running, it is in `unacked`. Queued behind a backlog of its
    own kind: its queue is not empty. Another kind's backlog does not hide a lost one (a long backfill)."""
    broker = Broker()
    broker.empty = True
    broker.busy = {"event"}
    stores.journal.record([("event", "src:queued", [{}]), ("delivery", "held", [{}]), ("delivery", "lost", [{}])])
    broker.held = {entry_key("delivery", "held")}
    sent: list[str] = []
    for _ in range(40):
        clock.now += 10
        sent += [e.key for e in missing_run(stores, broker, clock).resent]
    assert sent == ["lost", "lost"]  # sent again 30 s or so after each loss, up to max_sends (2)
    assert stores.journal.due(clock.now, 10, kinds=("event",))[0].sends == 0


def test_a_message_seen_again_between_two_sweeps_starts_its_watch_over(stores: Stores, clock: Clock) -> None:
    """Out of sight for a moment (between BRPOP and its `unacked` record, or a look while its queue was busy)
    is not lost: it must be missing at every sweep for the whole time."""
    broker = Broker()
    broker.empty = True
    stores.journal.record([("delivery", "d1", [{}])])
    clock.now += 10
    missing_run(stores, broker, clock)  # missing: watched from now
    clock.now += 20
    broker.held = {entry_key("delivery", "d1")}
    missing_run(stores, broker, clock)  # seen: the watch ends
    broker.held = set()
    clock.now += 20
    assert missing_run(stores, broker, clock).resent == ()  # missing again: 0 s, not 40
    broker.busy = {"delivery"}
    clock.now += 20
    missing_run(stores, broker, clock)  # its queue busy: not looked for, the watch ends
    broker.busy = set()
    clock.now += 20
    assert missing_run(stores, broker, clock).resent == ()
    clock.now += 30
    assert [e.key for e in missing_run(stores, broker, clock).resent] == ["d1"]


def test_a_dry_run_lists_what_was_found_missing_and_changes_no_watch(stores: Stores, clock: Clock) -> None:
    broker = Broker()
    broker.empty = True
    stores.journal.record([("chunk", "job:3", ["job", 3])])
    clock.now += 10
    assert missing_run(stores, broker, clock, dry_run=True).missing == ()  # records no watch
    missing_run(stores, broker, clock)
    clock.now += 30
    assert [e.key for e in missing_run(stores, broker, clock, dry_run=True).missing] == ["job:3"]
    assert broker.published == []
    assert [e.key for e in missing_run(stores, broker, clock).resent] == ["job:3"]


def test_a_held_message_is_matched_to_its_entry_by_the_arguments_it_was_published_with(policy: Policy) -> None:
    """What the reconciler reads back from `unacked` (a task's arguments) names the entry every producer
    path wrote: events, deliveries, chunks."""
    h = Harness(policy)
    c_event, a_event = h.submit(history_events(conversation()))
    handle_event(c_event, h.deps)
    handle_event(a_event, h.deps)
    job = h.queue[0]
    written = unsettled(h.deps.stores) | {entry_key("event", event_key("history", a_event["event_id"]))}
    read = {entry_key("event", key_of("event", [a_event]) or ""),
            entry_key("delivery", key_of("delivery", [{**job, "throttled": 2}]) or "")}  # a throttled retry
    assert read == written
    assert key_of("chunk", ["job-1", 7]) == chunk_key("job-1", 7)
    assert key_of("event", ["not an event"]) is None and key_of("chunk", ["job-1"]) is None


def test_a_long_backfill_does_not_crowd_a_lost_event_out_of_the_sweep(stores: Stores, clock: Clock) -> None:
    """A sweep reads a bounded number of entries, oldest first: those of a kind whose queue is busy (a
    backfill's thousands of chunks) are not among them."""
    broker = Broker()
    broker.empty = True
    broker.busy = {"chunk"}
    stores.journal.record([("chunk", f"job:{i}", ["job", i]) for i in range(1_200)])  # pages of 500
    clock.now += 1
    stores.journal.record([("event", "src:lost", [{"event_id": "lost"}])])
    clock.now += PUBLISH_SLACK_SECONDS + 1
    missing_run(stores, broker, clock, limit=5)
    clock.now += 30
    assert [e.key for e in missing_run(stores, broker, clock, limit=5).resent] == ["src:lost"]
