"""Benchmark the live path: events/s against a no-op task's rate, and enqueue-to-webhook latency.

    .venv/bin/python bench/pipeline.py [--events 2000] [--rate 100] [--seconds 10] [--concurrency N]

Starts its own redis-server, webhook receiver and celery worker (the same settings for every phase):
1. throughput of `apology.ping`, a no-op task: the ceiling Celery and Redis allow on this machine;
2. throughput of the live path: ticket events through handle_event, the engine and deliver to signed
   webhooks, measured until the last expected delivery arrives and the queue is empty.
   Both throughputs are drain rates: the queue is filled while the worker's consumer is paused
   (`cancel_consumer`), then the clock runs from `add_consumer` until it is empty, so the producer's own
   cost on this machine is not charged to either;
3. latency at a fixed offered rate: events sent on a fixed schedule, conversations interleaved as in a
   real helpdesk, and for every reply that is delivered the time from enqueue to webhook received.
Targets (issue 4): ratio >= 0.6; p99 <= 100 ms at 100 events/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tests.support.processes import broker_idle, celery_worker, redis_server, wait_until  # noqa: E402
from worker import bootstrap  # noqa: E402
from worker.app import create_app  # noqa: E402
from worker.engine import load_policy, review_history  # noqa: E402
from worker.models import TicketEvent, TicketHistory  # noqa: E402
from worker.pipeline import history_events, submit_events  # noqa: E402
from worker.routing import IMPLICIT_TARGET  # noqa: E402
from worker.settings import load_settings  # noqa: E402
from worker.targets.base import delivery_id  # noqa: E402
from worker.testing import WebhookReceiver  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-bench!").decode()
CORPUS = ROOT / "tests" / "corpus"


def corpus() -> list[TicketHistory]:
    out = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            out.append(TicketHistory.model_validate(json.loads(line)))
    return out


def conversations(count: int, tag: str) -> list[TicketHistory]:
    """At least `count` messages of corpus conversations, each copy under a ticket id of its own."""
    base = corpus()
    out: list[TicketHistory] = []
    total = 0
    i = 0
    while total < count:
        h = base[i % len(base)]
        ticket = h.ticket.model_copy(update={"id": f"{tag}-{i}-{h.ticket.id}"})
        out.append(h.model_copy(update={"ticket": ticket}))
        total += len(h.messages)
        i += 1
    return out


def interleaved(histories: list[TicketHistory]) -> list[TicketEvent]:
    """Round robin over tickets: message k of every ticket before message k+1 of any, as in real traffic."""
    per_ticket = [history_events(h, source="bench") for h in histories]
    out: list[TicketEvent] = []
    for k in range(max(len(p) for p in per_ticket)):
        out += [p[k] for p in per_ticket if k < len(p)]
    return out


def expected(histories: list[TicketHistory]) -> set[str]:
    policy = load_policy(None)
    return {delivery_id(v, IMPLICIT_TARGET) for h in histories for v in review_history(h, policy)
            if v.action in ("annotate", "escalate")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events for the throughput phases")
    parser.add_argument("--rate", type=float, default=100.0, help="offered events/s for the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--prefetch", type=int, default=4)
    parser.add_argument("--task-events", choices=["on", "off"], default="on",
                        help="APOLOGY_TASK_EVENTS for the worker and the producer (Flower needs them on)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as server, \
            WebhookReceiver(SECRET) as receiver:
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
               "APOLOGY_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on 127.0.0.1
               "APOLOGY_WEBHOOK_SECRET": SECRET, "APOLOGY_LOG_LEVEL": "WARNING", "APOLOGY_LOG_FORMAT": "json",
               "APOLOGY_WORKER_PREFETCH_MULTIPLIER": str(args.prefetch),
               "APOLOGY_TASK_EVENTS": str(args.task_events == "on").lower()}
        cfg = load_settings(broker_url=server.url, webhook_url=receiver.url, webhook_secret=SECRET,
                            task_events=args.task_events == "on")
        client = redis.Redis.from_url(server.url)
        stores = bootstrap.stores(cfg, client)
        producer = create_app(cfg)

        def idle() -> bool:
            return broker_idle(client)

        def send_event(payload: object) -> None:
            producer.send_task(bootstrap.HANDLE_EVENT, args=[payload])

        with celery_worker(env, concurrency=args.concurrency):
            print(f"worker: prefork, concurrency {args.concurrency}, prefetch multiplier {args.prefetch}, "
                  f"task events {args.task_events}; {os.cpu_count()} CPUs")
            # Warm up the pool processes (imports, policy, connections) outside the measurements.
            warm = conversations(60, "warm")
            submit_events(interleaved(warm), stores, send_event)
            receiver.wait_for(lambda r: len(r.deliveries) >= len(expected(warm)), timeout=60)
            wait_until(idle, timeout=60, interval=0.002)

            def drain_rate(fill: Callable[[], int], done: Callable[[], bool]) -> tuple[float, int]:
                """Fill the queue while the worker is paused, then time the worker emptying it."""
                producer.control.cancel_consumer("apology", reply=True)
                count = fill()
                started = time.perf_counter()
                producer.control.add_consumer("apology", reply=True)
                wait_until(done, timeout=600, interval=0.002)
                return count / (time.perf_counter() - started), count

            # 1. The ceiling: a no-op task.
            def pings() -> int:
                for _ in range(args.events):
                    producer.send_task("apology.ping")
                return args.events

            noop_rate, _ = drain_rate(pings, idle)

            # 2. The live path: the same number of ticket events, whole conversations, through to webhooks.
            histories = conversations(args.events, "tput")
            want = expected(histories)
            before = len(receiver.deliveries)
            live_rate, sent = drain_rate(
                lambda: submit_events(interleaved(histories), stores, send_event),
                lambda: len(receiver.deliveries) - before >= len(want) and idle())

            # 3. Latency at a fixed offered rate.
            lat_histories = conversations(int(args.rate * args.seconds), "lat")
            lat_events = interleaved(lat_histories)
            sent_at: dict[str, float] = {}
            replies = {(e.ticket.id, e.message.id): e for e in lat_events}
            policy = load_policy(None)
            by_reply = {}
            for h in lat_histories:
                for v in review_history(h, policy):
                    if v.action in ("annotate", "escalate") and (h.ticket.id, v.message_id) in replies:
                        by_reply[(h.ticket.id, v.message_id)] = delivery_id(v, IMPLICIT_TARGET)
            before = len(receiver.deliveries)
            start = time.perf_counter()
            pause = threading.Event()
            for i, event in enumerate(lat_events):
                due = start + i / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    pause.wait(delay)
                sent_at[event.event_id] = time.time()  # the receiver stamps with time.time() too
                submit_events([event], stores, send_event)
            receiver.wait_for(lambda r: {d.id for d in r.deliveries[before:]} >= set(by_reply.values()),
                              timeout=120)
            arrived = {d.id: d.received_at for d in receiver.deliveries[before:]}
            latencies = sorted(
                (arrived[did] - sent_at[f"{tid}/{mid}"]) * 1000 for (tid, mid), did in by_reply.items())

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    ratio = live_rate / noop_rate
    print(f"no-op task:        {noop_rate:8.1f} tasks/s  ({args.events} tasks)")
    print(f"live path:         {live_rate:8.1f} events/s ({sent} events, {len(want)} deliveries)")
    print(f"ratio:             {ratio:8.2f}  (target >= 0.6) {'OK' if ratio >= 0.6 else 'MISSED'}")
    print(f"latency at {args.rate:g} events/s over {args.seconds:g} s, enqueue -> webhook received, "
          f"{len(latencies)} deliveries:")
    print(f"  p50 {pct(50):7.1f} ms   p90 {pct(90):7.1f} ms   p99 {pct(99):7.1f} ms   "
          f"max {latencies[-1]:7.1f} ms  (target p99 <= 100 ms) {'OK' if pct(99) <= 100 else 'MISSED'}")
    print(f"  mean {statistics.fmean(latencies):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
