"""Benchmark the live path: events/s against a no-op task's rate, and enqueue-to-webhook latency by stage.

    .venv/bin/python bench/pipeline.py [--events 2000] [--rounds 3] [--rate 100] [--seconds 10] [--workers 1]
        [--concurrency N] [--prefetch N] [--task-events on|off] [--order helpdesk|rounds] [--gap 1 5]
        [--deliverer threads|none] [--latency-only] [--dump FILE]

Starts its own redis-server, webhook receiver and celery worker(s) (the same settings for every phase): as
the Procfile deploys them, prefork workers for events and a thread-pool `deliverer` for the webhooks
(`--deliverer none`: the prefork workers take every queue, as one `celery worker` does):
1. throughput of `apology.ping`, a no-op task: the ceiling Celery and Redis allow on this machine;
2. throughput of the live path: ticket events through handle_event, the engine and deliver to signed
   webhooks, measured until the last expected delivery arrives and the queue is empty.
   Both throughputs are drain rates: the queue is filled while the worker's consumer is paused
   (`cancel_consumer`), then the clock runs from `add_consumer` until it is empty, so the producer's own
   cost on this machine is not charged to either;
3. latency at a fixed offered rate: events sent on a fixed schedule, in the order a helpdesk emits them
   (tickets open at a steady pace; each reply comes 1-5 s after the message before it, so the mix of
   customer messages and replies is the same throughout), and for every reply that is delivered the time
   from enqueue to webhook received. The workers run with APOLOGY_TRACE_STAGES, so the latency is also
   broken down by stage (queue, order wait, take, engine, publish, delivery queue, delivery) for customer
   messages, replies judged on the first try, and replies that had to wait for an earlier message.
The producer, the receiver, Redis and the workers share this machine's CPUs: the load average is printed
before and after the latency phase; other work on the machine shows up in every figure.
Targets (issue 4): ratio >= 0.6; p99 <= 100 ms at 100 events/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.accuracy import load_corpus  # noqa: E402
from bench.machine import load, process_cpu  # noqa: E402
from tests.support.processes import broker_idle, celery_worker, redis_server, wait_until  # noqa: E402
from worker import bootstrap, tracing  # noqa: E402
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
    return [item.history for item in load_corpus(CORPUS)]


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
    """Round robin over tickets: message k of every ticket before message k+1 of any.

    Used to fill the queue for the drain rates, where order does not matter. As a stream at a fixed rate
    (`--order rounds`) it is not what a helpdesk sends: the first round is every ticket's customer message,
    the second every reply, so for seconds on end the offered load is replies only.
    """
    per_ticket = [history_events(h, source="bench") for h in histories]
    out: list[TicketEvent] = []
    for k in range(max(len(p) for p in per_ticket)):
        out += [p[k] for p in per_ticket if k < len(p)]
    return out


def helpdesk_stream(histories: list[TicketHistory], rate: float, gap: tuple[float, float],
                    seed: int = 4) -> list[TicketEvent]:
    """The events in the order a helpdesk emits them: tickets open at a steady pace (so that the stream
    carries `rate` events/s), each later message of a ticket comes `gap` seconds (uniform) after the one
    before it (a customer writes, an agent replies seconds later), and all tickets are merged by time."""
    rng = random.Random(seed)
    per_ticket = [history_events(h, source="bench") for h in histories]
    opens = rate / statistics.fmean(len(p) for p in per_ticket)  # tickets per second
    timed: list[tuple[float, int, int, TicketEvent]] = []
    for j, events in enumerate(per_ticket):
        at = j / opens
        for k, event in enumerate(events):
            at += rng.uniform(*gap) if k else 0.0
            timed.append((at, j, k, event))
    timed.sort(key=lambda t: t[:3])
    return [t[3] for t in timed]


def expected(histories: list[TicketHistory]) -> set[str]:
    policy = load_policy(None)
    return {delivery_id(v, IMPLICIT_TARGET) for h in histories for v in review_history(h, policy)
            if v.action in ("annotate", "escalate")}


# -- the latency breakdown -------------------------------------------------------------------------------
@dataclass
class Sample:
    """One event of the latency phase: when it was sent, the worker's stage stamps, when its webhook came."""

    event: TicketEvent
    sent: float
    stamps: dict[str, float]
    received: float | None  # None: no delivery expected (a customer message, a reply judged `none`)

    @property
    def reply(self) -> bool:
        return self.event.message.role == "agent"

    def attempts(self, stage: str) -> list[float]:
        return [self.stamps[k] for k in sorted((k for k in self.stamps if k.startswith(stage + ".")),
                                               key=lambda k: int(k.rsplit(".", 1)[1]))]

    @property
    def retried(self) -> bool:
        return len(self.attempts("start")) > 1

    def stages(self) -> dict[str, float]:
        """Milliseconds spent in each stage, for the stages this event went through."""
        s, out = self.stamps, {}
        starts = self.attempts("start")
        if not starts:
            return {}
        out["queue: enqueue -> task start"] = starts[0] - self.sent
        if len(starts) > 1:
            out["order wait: first start -> last start"] = starts[-1] - starts[0]
        taken = self.attempts("taken")
        if taken:
            out["take: dedup, order check, memory"] = taken[-1] - starts[-1]
        if "evaluated" in s and taken:
            out["engine: evaluate the reply"] = s["evaluated"] - taken[-1]
        if "published" in s and "evaluated" in s:
            out["publish the delivery task"] = s["published"] - s["evaluated"]
        if "done" in s:
            out["handle_event total: start -> done"] = s["done"] - starts[-1]
        delivers = self.attempts("deliver")
        if delivers and "published" in s:
            out["delivery queue: publish -> deliver start"] = delivers[0] - s["published"]
        if delivers and self.received is not None:
            out["deliver: start -> webhook received"] = self.received - delivers[-1]
        if self.received is not None:
            out["TOTAL: enqueue -> webhook received"] = self.received - self.sent
        return {k: v * 1000 for k, v in out.items()}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def breakdown(samples: list[Sample]) -> list[str]:
    groups = [
        ("customer messages", [s for s in samples if not s.reply]),
        ("replies delivered, judged on the first try", [s for s in samples if s.received and not s.retried]),
        ("replies delivered after order waits (retried)", [s for s in samples if s.received and s.retried]),
        ("replies judged `none` (no delivery)", [s for s in samples if s.reply and not s.received]),
    ]
    lines = [f"  {'stage (ms)':44s} {'n':>5s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s}"]
    for title, group in groups:
        lines.append(f"  {title} ({len(group)})")
        stages: dict[str, list[float]] = {}
        for sample in group:
            for name, ms in sample.stages().items():
                stages.setdefault(name, []).append(ms)
        for name, values in stages.items():
            lines.append(f"    {name:42s} {len(values):5d} {percentile(values, 50):8.1f} "
                         f"{percentile(values, 90):8.1f} {percentile(values, 99):8.1f} {max(values):8.1f}")
    return lines


def cpu_seconds() -> dict[str, float] | None:
    """CPU seconds since boot used by the whole machine and by each part of this benchmark; Linux only.

    The difference between two readings tells what each part costs and how much of the machine other work
    took meanwhile, which the load average (a slow moving average) does not.
    """
    try:
        tick = os.sysconf("SC_CLK_TCK")
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        out = {"machine": (user + nice + system + irq + softirq + steal) / tick}
        procs: dict[int, tuple[int, str, float]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    procs[int(entry.name)] = process_cpu(entry.name)
                except OSError:
                    continue
    except (OSError, ValueError):
        return None
    me = os.getpid()
    out["producer and receiver (this process)"] = procs.get(me, (0, "", 0.0))[2]
    for pid, (ppid, name, used) in procs.items():
        if ppid == me:
            part = "Redis" if "redis" in name else "worker main process"
            out[part] = out.get(part, 0.0) + used
            for child_ppid, _, child_used in procs.values():
                if child_ppid == pid:
                    out["worker pool processes"] = out.get("worker pool processes", 0.0) + child_used
    return out


def cpu_share(before: dict[str, float] | None, after: dict[str, float] | None, seconds: float,
              events: int) -> list[str]:
    if before is None or after is None or seconds <= 0:
        return []
    used = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    ours = sum(v for k, v in used.items() if k != "machine")
    parts = ", ".join(f"{k} {v / events * 1000:.1f}" for k, v in used.items() if k != "machine")
    return [f"CPU per event sent: {ours / events * 1000:.1f} ms ({parts})",
            f"CPUs busy meanwhile: {ours / seconds:.2f} with this benchmark, "
            f"{max(0.0, used['machine'] - ours) / seconds:.2f} with other work on the machine"]


def other_work(before: dict[str, float] | None, after: dict[str, float] | None, seconds: float) -> str:
    if before is None or after is None or seconds <= 0:
        return ""
    used = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    ours = sum(v for k, v in used.items() if k != "machine")
    return f"; other work took {max(0.0, used['machine'] - ours) / seconds:.2f} CPUs meanwhile"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events for the throughput phases")
    parser.add_argument("--rate", type=float, default=100.0, help="offered events/s for the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes (each its own pool)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="pool processes per worker (default: the CPUs shared among the workers)")
    parser.add_argument("--prefetch", type=int, default=None,
                        help="APOLOGY_WORKER_PREFETCH_MULTIPLIER (default: the worker's own default)")
    parser.add_argument("--task-events", choices=["on", "off"], default="on",
                        help="APOLOGY_TASK_EVENTS for the worker and the producer (Flower needs them on)")
    parser.add_argument("--order", choices=["helpdesk", "rounds"], default="helpdesk",
                        help="latency phase: messages in helpdesk order (a reply GAP seconds after the message "
                             "before it) or in rounds (every ticket's first message, then every second one)")
    parser.add_argument("--gap", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN", "MAX"),
                        help="seconds between consecutive messages of a ticket in helpdesk order")
    parser.add_argument("--rounds", type=int, default=3, help="alternating no-op and live drains; medians reported")
    parser.add_argument("--latency-only", action="store_true", help="skip the two throughput phases")
    parser.add_argument("--sent-events", choices=["on", "off"], default="off",
                        help="APOLOGY_TASK_SENT_EVENTS: a task-sent event per publish, producer and worker")
    parser.add_argument("--trace", choices=["on", "off"], default="on",
                        help="APOLOGY_TRACE_STAGES (one Redis write per task); off: no stage breakdown")
    parser.add_argument("--deliverer", choices=["threads", "none"], default="threads",
                        help="threads: deliveries on a worker of their own (the Procfile's `deliverer`, 32 "
                             "threads), the prefork workers on events; none: the prefork workers take every queue")
    parser.add_argument("--dump", type=Path, help="write every latency-phase event's stamps here (JSON)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as server, \
            WebhookReceiver(SECRET) as receiver:
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
               "APOLOGY_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on 127.0.0.1
               "APOLOGY_WEBHOOK_SECRET": SECRET, "APOLOGY_LOG_LEVEL": "WARNING", "APOLOGY_LOG_FORMAT": "json",
               "APOLOGY_TASK_EVENTS": str(args.task_events == "on").lower(),
               "APOLOGY_TASK_SENT_EVENTS": str(args.sent_events == "on").lower(),
               "APOLOGY_TRACE_STAGES": str(args.trace == "on").lower()}
        if args.prefetch is not None:
            env["APOLOGY_WORKER_PREFETCH_MULTIPLIER"] = str(args.prefetch)
        cfg = load_settings(broker_url=server.url, webhook_url=receiver.url, webhook_secret=SECRET,
                            task_events=args.task_events == "on", task_sent_events=args.sent_events == "on")
        prefetch = args.prefetch if args.prefetch is not None else cfg.worker_prefetch_multiplier
        client = redis.Redis.from_url(server.url)
        stores = bootstrap.stores(cfg, client)
        producer = create_app(cfg)
        # Pausing the events queue is enough to fill it (deliveries only come from handling events). Pausing
        # and resuming the deliveries queue as well measured a no-op rate about half as high.
        paused = [producer.conf.task_default_queue]

        def idle() -> bool:
            return broker_idle(client)

        def send_event(payload: object) -> None:
            bootstrap.send_event(payload, producer)

        concurrency = args.concurrency or max(1, (os.cpu_count() or 2) // args.workers)
        with ExitStack() as workers:
            split = args.deliverer == "threads"
            queues = ("--queues", "apology,apology.backfill") if split else ()
            event_workers = [f"worker{n + 1}@{socket.gethostname()}" for n in range(args.workers)]
            for n in range(args.workers):
                workers.enter_context(celery_worker(env, concurrency=concurrency, name=f"worker{n + 1}",
                                                    extra=queues))
            if split:
                workers.enter_context(celery_worker(env, concurrency=32, pool="threads", name="deliverer",
                                                    extra=("--queues", "apology.deliveries")))
            print(f"{args.workers} worker(s): prefork, concurrency {concurrency}, prefetch multiplier {prefetch}, "
                  f"task events {args.task_events} (sent events {args.sent_events})"
                  f"{'; deliveries on a deliverer of 32 threads' if split else ''}; {os.cpu_count()} CPUs; {load()}")
            # Warm up the pool processes (imports, policy, connections) outside the measurements.
            warm = conversations(60, "warm")
            warm_deliveries = len(expected(warm))
            submit_events(interleaved(warm), stores, send_event)
            receiver.wait_for(lambda r: len(r.deliveries) >= warm_deliveries, timeout=60)
            wait_until(idle, timeout=60, interval=0.002)

            def drain_rate(fill: Callable[[], int], done: Callable[[], bool]) -> tuple[float, int]:
                """Fill the queue while the worker is paused, then time the worker emptying it."""
                # Only the event workers: a broadcast would also make the deliverer consume the events
                # queue from then on, so its 32 threads would take events and no-op tasks too.
                for queue in paused:
                    producer.control.cancel_consumer(queue, reply=True, destination=event_workers)
                count = fill()
                started, before = time.perf_counter(), cpu_seconds()
                for queue in paused:
                    producer.control.add_consumer(queue, reply=True, destination=event_workers)
                wait_until(done, timeout=600, interval=0.002)
                elapsed = time.perf_counter() - started
                others.append(other_work(before, cpu_seconds(), elapsed))
                return count / elapsed, count

            others: list[str] = []

            noop_rates: list[float] = []
            live_rates: list[float] = []
            sent = want = 0
            if not args.latency_only:
                # Alternating rounds, each a no-op drain then a live drain: either rate swings by a third or
                # more from run to run on this machine (scheduling of four processes on two cores), so one
                # pair of drains is not a measurement. The medians are.
                for round_no in range(args.rounds):
                    # 1. The ceiling: a no-op task.
                    def pings() -> int:
                        for _ in range(args.events):
                            producer.send_task("apology.ping")
                        return args.events

                    noop_rates.append(drain_rate(pings, idle)[0])

                    # 2. The live path: the same number of ticket events, whole conversations, to webhooks.
                    histories = conversations(args.events, f"tput{round_no}")
                    want = len(expected(histories))
                    before = len(receiver.deliveries)
                    rate, sent = drain_rate(
                        lambda hs=histories: submit_events(interleaved(hs), stores, send_event),
                        lambda b=before, w=want: len(receiver.deliveries) - b >= w and idle())
                    live_rates.append(rate)

            # 3. Latency at a fixed offered rate.
            count = int(args.rate * args.seconds)
            # In helpdesk order, tickets keep opening until the last event sent: with only just enough
            # conversations, the last seconds would be the replies of tickets opened earlier and nothing else.
            lat_histories = conversations(count * 2 if args.order == "helpdesk" else count, "lat")
            stream = (helpdesk_stream(lat_histories, args.rate, tuple(args.gap)) if args.order == "helpdesk"
                      else interleaved(lat_histories))[:count]
            in_stream = {(e.ticket.id, e.message.id) for e in stream}
            policy = load_policy(None)
            by_reply = {}
            for h in lat_histories:
                for v in review_history(h, policy):
                    if v.action in ("annotate", "escalate") and (h.ticket.id, v.message_id) in in_stream:
                        by_reply[(h.ticket.id, v.message_id)] = delivery_id(v, IMPLICIT_TARGET)
            before = len(receiver.deliveries)
            load_before, cpu_before, clock_before = load(), cpu_seconds(), time.perf_counter()
            sent_at: dict[str, float] = {}
            start = time.perf_counter()
            pause = threading.Event()
            for i, event in enumerate(stream):
                due = start + i / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    pause.wait(delay)
                sent_at[event.event_id] = time.time()  # the receiver and the workers stamp with time.time() too
                submit_events([event], stores, send_event)
            span = max(sent_at.values()) - min(sent_at.values())
            offered = (len(stream) - 1) / span if span > 0 else 0.0  # what the producer managed to send
            receiver.wait_for(lambda r: {d.id for d in r.deliveries[before:]} >= set(by_reply.values()),
                              timeout=120)
            wait_until(idle, timeout=120, interval=0.01)
            load_after = load()
            cpu_used = cpu_share(cpu_before, cpu_seconds(), time.perf_counter() - clock_before, len(stream))
            arrived = {d.id: d.received_at for d in receiver.deliveries[before:]}
            stamps = tracing.read(client, [f"bench:{e.event_id}" for e in stream])
            samples = [Sample(e, sent_at[e.event_id], stamps.get(f"bench:{e.event_id}", {}),
                              arrived.get(by_reply.get((e.ticket.id, e.message.id), "")))
                       for e in stream]

    latencies = sorted((s.received - s.sent) * 1000 for s in samples if s.received is not None)
    if args.dump:
        args.dump.write_text(json.dumps([{"event": s.event.event_id, "role": s.event.message.role,
                                          "sent": s.sent, "stamps": s.stamps, "received": s.received}
                                         for s in samples]))
    if not args.latency_only:
        for n, (noop, live) in enumerate(zip(noop_rates, live_rates, strict=True)):
            print(f"round {n + 1}: no-op {noop:6.1f} tasks/s{others[2 * n]}; live {live:6.1f} events/s"
                  f"{others[2 * n + 1]}; ratio {live / noop:.2f}")
        noop_rate, live_rate = statistics.median(noop_rates), statistics.median(live_rates)
        ratio = live_rate / noop_rate
        print(f"no-op task:        {noop_rate:8.1f} tasks/s  (median of {args.rounds} rounds of {args.events} tasks)")
        print(f"live path:         {live_rate:8.1f} events/s (median of {args.rounds} rounds of {sent} events, "
              f"{want} deliveries each)")
        print(f"ratio:             {ratio:8.2f}  (of the medians; target >= 0.6) {'OK' if ratio >= 0.6 else 'MISSED'}")
    replies = sum(s.reply for s in samples)
    retried = str(sum(s.reply and s.retried for s in samples)) if args.trace == "on" else "?"
    print(f"latency at {args.rate:g} events/s over {args.seconds:g} s, {args.order} order"
          + (f" (replies {args.gap[0]:g}-{args.gap[1]:g} s after the message before)"
             if args.order == "helpdesk" else "")
          + f": {len(samples)} events sent at {offered:.1f}/s, {replies} replies ({retried} waited for an earlier "
          f"message), {len(latencies)} deliveries; {load_before} before, {load_after} after")
    for line in cpu_used:
        print(f"  {line}")
    print(f"  enqueue -> webhook received: p50 {percentile(latencies, 50):7.1f} ms   "
          f"p90 {percentile(latencies, 90):7.1f} ms   p99 {percentile(latencies, 99):7.1f} ms   "
          f"max {latencies[-1]:7.1f} ms   mean {statistics.fmean(latencies):.1f} ms  "
          f"(target p99 <= 100 ms) {'OK' if percentile(latencies, 99) <= 100 else 'MISSED'}")
    if args.trace == "on":
        print("stage breakdown (worker stamps, APOLOGY_TRACE_STAGES):")
        print("\n".join(breakdown(samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
