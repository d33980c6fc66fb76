"""End to end: 500 events through a real celery worker on a real Redis to a verifying webhook receiver.

The expected deliveries are computed by running the engine in process on the same conversations, so
the test says: whatever order the queue hands events out in, and however often an event is repeated,
the helpdesk receives exactly the verdicts `apology-worker review` gives, each once, each signed.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support.processes import broker_idle, celery_worker, redis_server, wait_until
from worker import bootstrap
from worker.app import create_app
from worker.broker import BACKFILL_QUEUE, DELIVERY_QUEUE, QUEUE
from worker.engine import load_policy, review_history
from worker.models import TicketEvent, TicketHistory
from worker.pipeline import DeliveryJob, history_events, submit_events, ticket_key
from worker.routing import IMPLICIT_TARGET
from worker.settings import load_settings
from worker.targets.base import delivery_id
from worker.testing import Request, WebhookReceiver

from .conftest import SECRET, Live

pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).resolve().parents[1] / "corpus"
EVENTS = 500


def conversations() -> list[TicketHistory]:
    """The corpus conversations, each under a ticket id of its own."""
    out = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for n, line in enumerate(path.read_text().splitlines()):
            data = json.loads(line)
            history = TicketHistory.model_validate(data)
            ticket = history.ticket.model_copy(update={"id": f"{path.stem}-{n}-{history.ticket.id}"})
            out.append(history.model_copy(update={"ticket": ticket}))
    return out


def expected_deliveries(histories: list[TicketHistory]) -> dict[str, dict[str, object]]:
    policy = load_policy(None)
    return {delivery_id(v, IMPLICIT_TARGET): v.model_dump(mode="json")
            for h in histories for v in review_history(h, policy) if v.action in ("annotate", "escalate")}


def test_500_events_give_exactly_the_expected_deliveries_each_once(live: Live) -> None:
    rng = random.Random(4)
    histories = []
    events: list[TicketEvent] = []
    for history in conversations():  # whole conversations until about 450 distinct events
        if len(events) + len(history.messages) > EVENTS - 50:
            break
        histories.append(history)
        events += history_events(history)
    duplicates = rng.sample(events, EVENTS - len(events))
    stream = events + duplicates
    rng.shuffle(stream)  # replies often come out before the customer message they answer
    assert len(stream) == EVENTS
    expected = expected_deliveries(histories)
    assert len(expected) > 50
    print(f"\n{len(stream)} events ({len(duplicates)} duplicates) over {len(histories)} tickets; "
          f"{len(expected)} deliveries expected")

    submit_events(stream, live.stores, live.send_event)

    live.receiver.wait_for(lambda r: len(r.deliveries) >= len(expected), timeout=60)
    wait_until(live.idle, timeout=60, what="worker idle")
    received = live.receiver.deliveries
    ids = [d.id for d in received]
    assert len(ids) == len(set(ids)), "a delivery arrived twice"
    assert set(ids) == set(expected)
    for d in received:
        assert d.data == expected[d.id], f"verdict differs from `review` for {d.id}"
        assert d.type == {"annotate": "reply.annotated", "escalate": "reply.escalated"}[d.data["action"]]
    assert live.receiver.rejected == []  # every signature verified with standardwebhooks
    assert live.stores.dead_letter_count() == 0
    assert all(live.stores.pending(ticket_key("history", h.ticket.id)) == [] for h in histories)

    # Sending the same conversations again (as `apology-worker enqueue` would) delivers nothing new.
    before = live.receiver.requests
    submit_events(events[:100], live.stores, live.send_event)
    wait_until(live.idle, timeout=30, what="worker idle")
    assert live.receiver.requests == before


def test_a_malformed_event_is_dead_lettered_and_the_worker_goes_on(live: Live) -> None:
    count = live.stores.dead_letter_count()
    live.send_event("{not json")
    live.send_event({"event_id": "x", "source": "generic"})
    history = conversations()[-1]
    submit_events(history_events(history, source="after-bad"), live.stores, live.send_event)
    wait_until(lambda: live.stores.dead_letter_count() == count + 2 and live.idle(), timeout=30,
               what="two dead letters")
    letters = live.stores.dead_letters(2)
    reasons = sorted(letter.reason for letter in letters)
    assert reasons[0].startswith("not a canonical ticket event")
    assert reasons[1].startswith("not valid JSON")
    assert live.worker.popen.poll() is None
    # The valid conversation sent after them was handled: every message of it is remembered.
    assert [m.id for m in live.stores.conversation(ticket_key("after-bad", history.ticket.id))] == [
        m.id for m in history.messages]


def _envelope(body: object, task: str = "apology.handle_event") -> str:
    """A queue entry in kombu's envelope, sound in every field kombu reads, around a task body of any shape."""
    return json.dumps({
        "body": base64.b64encode(json.dumps(body).encode()).decode(), "content-type": "application/json",
        "content-encoding": "utf-8", "headers": {"task": task, "id": f"odd-{secrets.token_hex(4)}"},
        "properties": {"delivery_tag": secrets.token_hex(8), "body_encoding": "base64",
                       "delivery_info": {"exchange": "apology", "routing_key": "apology"}}})


def test_queue_entries_no_task_reads_are_dead_lettered_unlogged_and_the_worker_goes_on(live: Live) -> None:
    """A stray string on the queue list stopped the worker (kombu raised out of its read loop), and Celery
    logged the whole body of an unknown task at ERROR: both are now dead letters, named without bodies. So
    are sound envelopes around bodies Celery's request cannot unpack (an operator's review, session 18: the
    first stopped every worker that took it, one after another)."""
    count = live.stores.dead_letter_count()
    live.stores.redis.lpush("apology", "hello LEAKCANARY-1")
    live.producer.send_task("no.such.task", args=[{"body": "LEAKCANARY-2"}])
    live.stores.redis.lpush("apology", _envelope({"x": "LEAKCANARY-3"}))
    live.stores.redis.lpush("apology", _envelope(["LEAKCANARY-4"]))
    history = conversations()[-2]
    submit_events(history_events(history, source="after-stray"), live.stores, live.send_event)
    wait_until(lambda: live.stores.dead_letter_count() == count + 4 and live.idle(), timeout=30,
               what="four more dead letters")
    reasons = sorted(letter.reason for letter in live.stores.dead_letters(4))
    assert reasons[0].startswith("an entry on queue apology is not a task message: not JSON")
    assert reasons[1].startswith("refused by the worker: invalid task message (ValueError")
    assert reasons[2].startswith("refused by the worker: invalid task message (ValueError")
    assert reasons[3].startswith("refused by the worker: unknown task 'no.such.task'")
    assert live.worker.popen.poll() is None
    assert [m.id for m in live.stores.conversation(ticket_key("after-stray", history.ticket.id))] == [
        m.id for m in history.messages]
    assert "LEAKCANARY" not in "".join(live.worker.history)


def test_deliveries_overtake_the_events_queued_before_them(tmp_path: Path) -> None:
    """A verdict's delivery must not wait behind every event that arrived after its reply: the worker
    takes every queued delivery before the next event (beyond the few it had already reserved)."""
    history = conversations()[1]
    verdict = next(v for v in review_history(history, load_policy(None)) if v.action != "none")
    base = delivery_id(verdict, IMPLICIT_TARGET)
    jobs = [DeliveryJob(f"{base}-{i}", IMPLICIT_TARGET, verdict.model_dump(mode="json"), "test:overtake")
            for i in range(40)]
    backlog = 300
    queued_then: list[int] = []
    with redis_server(tmp_path) as server:
        client = redis.Redis.from_url(server.url)

        def respond(request: Request) -> int:
            queued_then.append(int(client.llen(QUEUE)))
            return 204

        with WebhookReceiver(SECRET, respond=respond) as receiver:
            producer = create_app(load_settings(broker_url=server.url))
            for _ in range(backlog):
                producer.send_task("apology.ping")
            for job in jobs:  # queued after all the events
                producer.send_task(bootstrap.DELIVER, args=[job.to_payload()])
            assert client.llen(DELIVERY_QUEUE) == len(jobs)
            env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
                   "APOLOGY_ALLOW_PRIVATE_TARGETS": "true", "APOLOGY_WEBHOOK_SECRET": SECRET}
            with celery_worker(env, concurrency=2):
                receiver.wait_for(lambda r: len(r.deliveries) == len(jobs), timeout=60)
                wait_until(lambda: broker_idle(client), timeout=60, what="worker idle")
            producer.close()
    # Taking the queues in turn instead would let one event through per delivery (40 or more).
    assert len(queued_then) == len(jobs)
    assert queued_then[-1] >= backlog - 20, queued_then


def test_live_events_overtake_a_queued_backfill(tmp_path: Path) -> None:
    """A backfill queued first must not hold up live review: the worker drains the events queue before it
    takes more than the few backfill messages it had reserved."""
    backlog = 300
    with redis_server(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        producer = create_app(load_settings(broker_url=server.url))
        for _ in range(backlog):
            producer.send_task("apology.ping", queue=BACKFILL_QUEUE)
        for _ in range(backlog):
            producer.send_task("apology.ping")
        assert (client.llen(BACKFILL_QUEUE), client.llen(QUEUE)) == (backlog, backlog)
        left_when_events_done: list[int] = []

        def events_done() -> bool:
            if client.llen(QUEUE) == 0:
                left_when_events_done.append(int(client.llen(BACKFILL_QUEUE)))
                return True
            return False

        with celery_worker({"APOLOGY_BROKER_URL": server.url}, concurrency=2):
            wait_until(events_done, timeout=60, interval=0.002, what="events queue drained")
            wait_until(lambda: broker_idle(client), timeout=60, what="worker idle")
        producer.close()
    assert left_when_events_done[0] >= backlog - 10, left_when_events_done


@contextmanager
def task_monitor(producer: Celery) -> Iterator[dict[str, set[str]]]:
    """The task event types a monitor (as Flower) has heard, by task id, listening from the moment it yields.

    Pub/sub keeps nothing for a late subscriber: it pings until it hears one, so the monitor listens.
    """
    seen: dict[str, set[str]] = {}

    def on_event(event: dict[str, object]) -> None:
        if isinstance(event.get("uuid"), str):
            seen.setdefault(str(event["uuid"]), set()).add(str(event["type"]))

    with producer.connection_for_read() as conn:
        monitor = producer.events.Receiver(conn, handlers={"*": on_event})
        thread = threading.Thread(target=monitor.capture, kwargs={"limit": None, "timeout": None}, daemon=True)
        thread.start()
        try:
            probes: list[str] = []

            def heard() -> bool:
                probes.append(producer.send_task("apology.ping").id)
                return any("task-succeeded" in seen.get(p, set()) for p in probes)

            wait_until(heard, timeout=30, interval=0.2, what="the monitor hears task events")
            yield seen
        finally:
            monitor.should_stop = True
            thread.join(timeout=10)


def test_task_events_reach_a_monitor_though_sent_in_batches(live: Live) -> None:
    """Task events are held back briefly to go out together (worker.consumer): every one must still arrive,
    including those of a burst too small to fill the dispatcher's buffer, which only the timer sends."""
    with task_monitor(live.producer) as seen:
        burst = [live.producer.send_task("apology.ping").id for _ in range(4)]  # 12 events, < 24
        wait_until(lambda: all({"task-received", "task-started", "task-succeeded"} <= seen.get(t, set())
                               for t in burst), timeout=30, what="every event of the burst")


def test_a_stopping_worker_sends_the_task_events_it_was_holding(tmp_path: Path) -> None:
    """Events wait to go out together; a worker told to stop before the wait is over must send them rather
    than drop them with its buffer (a long wait here, so the stop always comes first)."""
    with redis_server(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        producer = create_app(load_settings(broker_url=server.url))
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_TASK_EVENTS_BATCH_SECONDS": "10"}
        with celery_worker(env, concurrency=1) as worker, task_monitor(producer) as seen:
            wait_until(lambda: broker_idle(client), timeout=30, interval=0.005, what="worker idle")
            last = producer.send_task("apology.ping").id
            # The broker looks idle for a moment before the task has even started: the worker pops the message
            # (BRPOP) before it records it as reserved (HSET unacked), and a SIGTERM then stops it with the task
            # never run and no "succeeded" event to send. The worker logs "received" after that record, so idle
            # after it means acknowledged, and Celery buffers "task-succeeded" in the same call as the ack.
            worker.wait_for_line(f"apology.ping[{last}] received", timeout=30)
            wait_until(lambda: broker_idle(client), timeout=30, interval=0.001, what="the last task done")
            worker.stop(signal.SIGTERM)
            # Inside the 10 s batch: only the shutdown flush can have sent it (a loaded two-core
            # machine took over 4 s to stop the worker).
            wait_until(lambda: "task-succeeded" in seen.get(last, set()), timeout=8,
                       what="the last task's succeeded event")
        producer.close()


def test_a_busy_worker_told_to_stop_stops_inside_a_grace_period(tmp_path: Path) -> None:
    """SIGTERM to the main process, as Kubernetes and systemd send it, with events queued: each pool process
    waited 30 s for the main process to read its last result, which it no longer does in a warm shutdown, so
    a busy worker took 31-34 s to stop (an operator's review, session 18), past Kubernetes' default 30 s
    grace, whose SIGKILL then left the messages it held to the visibility timeout. The Procfile's worker (with
    gossip, and the events queues only) showed it; the messages it held go back on the queue."""
    events = [e for h in conversations() for e in history_events(h, source="stop")]
    with redis_server(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        producer = create_app(load_settings(broker_url=server.url))
        stores = bootstrap.stores(load_settings(broker_url=server.url), client)
        submit_events(events, stores, lambda p: producer.send_task(bootstrap.HANDLE_EVENT, args=[p]))
        with celery_worker({"APOLOGY_BROKER_URL": server.url}, gossip=True,
                           extra=("--queues", "apology,apology.backfill")) as worker:
            wait_until(lambda: client.llen(QUEUE) < len(events) - 300, timeout=60, what="the worker busy")
            worker.popen.send_signal(signal.SIGTERM)
            worker.popen.wait(timeout=20)  # inside a 30 s grace period with room to spare
        left, held = client.llen(QUEUE), client.hlen("unacked")
        producer.close()
    assert left > 0, "the stop came too late to prove anything"
    assert held == 0  # what it had reserved is back on the queue, not waiting for the visibility timeout
