"""A pipeline to break: a real redis-server (append-only file on), real `celery -A worker.app worker`
processes started and killed at will, and a verifying receiver whose answer the test switches.

Nothing here sleeps to synchronise: every wait is on a condition (the receiver's deliveries, the broker's
queues, the journal, the dead-letter count) with a deadline. Each test prints one `fault-counts` line:
events sent, deliveries expected, distinct deliveries received, repeated POSTs of an already-received
webhook-id (which the receiver deduplicates), dead letters, deliveries lost, and how many messages the
journal's reconciler published again because the broker had lost them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.support.processes import (
    Proc,
    RedisServer,
    broker_idle,
    celery_worker,
    python_env,
    redis_server,
    venv_bin,
    wait_until,
)
from worker import bootstrap
from worker.app import create_app
from worker.engine import load_policy, review_reply
from worker.models import Author, Message, Ticket, TicketEvent
from worker.pipeline import submit_events
from worker.routing import IMPLICIT_TARGET
from worker.settings import load_settings
from worker.stores import Stores
from worker.targets.base import delivery_id
from worker.testing import Request, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"fault-test-secret-of-32-bytes-ok").decode()
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
VISIBILITY_TIMEOUT = 6  # seconds before Redis hands a lost task to another worker
# How long past due, after the queue was last seen empty, a journalled message must be for the reconciler to
# publish it again: more than the settings' floor with the visibility timeout above (6 s, its 1 s restore
# sweep and the 5 s order wait: 12 s).
RECONCILE_AFTER = 15
RESENT_LINE = "published again: lost between the queue and a worker"  # worker.reconcile's log line

# Replies that the shipped policy annotates or escalates, each after the customer message it answers.
EXCHANGES = [
    ("My blender arrived with a cracked jug and I'm really disappointed!",
     "Sorry for any inconvenience. Send a photo and we will review it."),
    ("This is the third time my package is late. Unacceptable.",
     "We apologize for the trouble. As I already told you, you should have checked the tracking page."),
    ("You charged me twice this month and nobody answers.",
     "Sorry about that, this was our fault and we are liable for the error."),
    ("The app logs me out every five minutes, I'm losing work.",
     "Apologies for any issues caused."),
]


@dataclass
class Switch:
    """What the receiver answers; a test flips it to take the receiver down and bring it back."""

    status: int = 204

    def __call__(self, request: Request) -> int:
        return self.status


class Gate:
    """A receiver that holds every request until it is opened, counting the requests it holds."""

    def __init__(self) -> None:
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self.held = 0

    def __call__(self, request: Request) -> int:
        with self._lock:
            self.held += 1
        self._opened.wait(timeout=120)
        return 204

    def open(self) -> None:
        self._opened.set()


@dataclass
class Cluster:
    redis: RedisServer
    receiver: WebhookReceiver
    switch: Switch
    env: dict[str, str]
    producer: Celery
    stores: Stores
    workers: list[Proc] = field(default_factory=list)

    @contextmanager
    def worker(self, name: str, concurrency: int = 2, pool: str = "prefork",
               queues: str | None = None) -> Iterator[Proc]:
        extra = ("--queues", queues) if queues else ()
        with celery_worker(self.env, concurrency=concurrency, pool=pool, extra=extra, name=name,
                           cwd=ROOT) as proc:
            self.workers.append(proc)
            yield proc

    def send_event(self, payload: Any) -> None:
        self.producer.send_task(bootstrap.HANDLE_EVENT, args=[payload])

    def submit(self, events: list[TicketEvent]) -> None:
        submit_events(events, self.stores, self.send_event)

    def idle(self) -> bool:
        return broker_idle(self.stores.redis)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([venv_bin("apology-worker"), *args], env=python_env(**self.env), cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)

    def resent(self, found: str | None = None) -> int:
        """How many messages the workers' reconciler published again (it logs each at WARNING), or only those
        it `found` "overdue" or "missing"."""
        return sum(RESENT_LINE in line and (found is None or json.loads(line).get("found") == found)
                   for p in self.workers for line in p.history)

    def settle(self, expected: set[str], timeout: float = 180.0,
               alive: Proc | None = None) -> None:
        """Wait until every expected delivery arrived, the broker has nothing left, not even a retry, and
        every journal entry is settled; with `alive`, fail at once if that worker process exits."""
        def done() -> bool:
            if alive is not None and alive.popen.poll() is not None:
                raise AssertionError(f"the worker exited ({alive.popen.returncode}):\n{alive.output()}")
            return (expected <= set(self.receiver.delivery_ids()) and self.idle()
                    and self.stores.journal.size() == 0)
        try:
            wait_until(done, timeout=timeout, what="every delivery, an idle broker, a settled journal")
        except TimeoutError as exc:
            queued = (self.stores.redis.llen("apology"), self.stores.redis.llen("apology.deliveries"),
                      self.stores.redis.hlen("unacked"), self.stores.journal.size())
            missing = sorted(expected - set(self.receiver.delivery_ids()))
            recorded = [self.stores.was_delivered(m) for m in missing]
            tails = "\n".join(f"--- worker {i}:\n{p.output()}" for i, p in enumerate(self.workers))
            raise TimeoutError(f"{exc}; queued/unacked/journal: {queued}; missing {missing[:5]} (recorded as "
                               f"delivered: {recorded[:5]}); dead letters: {self.stores.dead_letter_count()}"
                               f"\n{tails}") from None


@pytest.fixture()
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Build a cluster with extra APOLOGY_ settings; everything is stopped when the test ends."""
    with ExitStack() as stack:
        def make(secret: str = SECRET, **extra: str) -> Cluster:
            server = stack.enter_context(redis_server(tmp_path))
            switch = Switch()
            receiver = stack.enter_context(WebhookReceiver(secret, respond=switch))
            env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
                   "APOLOGY_WEBHOOK_SECRET": secret, "APOLOGY_ALLOW_PRIVATE_TARGETS": "true",
                   "APOLOGY_LOG_FORMAT": "json", "APOLOGY_LOG_LEVEL": "WARNING",
                   "APOLOGY_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT),
                   "APOLOGY_RECONCILE_AFTER_SECONDS": str(RECONCILE_AFTER),
                   "APOLOGY_RECONCILE_INTERVAL_SECONDS": "1",
                   "APOLOGY_EVENT_LOCK_SECONDS": "5", "APOLOGY_TASK_EVENTS": "false",
                   "APOLOGY_DELIVERY_BACKOFF_SECONDS": "0.2", "APOLOGY_DELIVERY_BACKOFF_MAX_SECONDS": "1",
                   **extra}
            cfg = load_settings(broker_url=server.url, visibility_timeout_seconds=VISIBILITY_TIMEOUT)
            producer = create_app(cfg)
            stack.callback(producer.close)
            client = redis.Redis.from_url(server.url)
            return Cluster(server, receiver, switch, env, producer, bootstrap.stores(cfg, client))

        yield make


def events(count: int, prefix: str) -> tuple[list[TicketEvent], set[str]]:
    """`count` agent replies on tickets of their own (the customer message in the event's history), and
    the webhook ids they must produce under the shipped policy."""
    policy = load_policy(None)
    actions = []
    for said, reply in EXCHANGES:
        verdict = review_reply(_message("a", "agent", reply, 10), [_message("c", "customer", said, 0)],
                               Ticket(id="t"), policy)
        actions.append(verdict)
    out: list[TicketEvent] = []
    expected: set[str] = set()
    for i in range(count):
        said, reply = EXCHANGES[i % len(EXCHANGES)]
        ticket = Ticket(id=f"{prefix}-{i}", channel="email")
        message = _message(f"a{i}", "agent", reply, 10)
        out.append(TicketEvent(event_id=f"{prefix}-{i}", source="faults", type="message.created",
                               occurred_at=message.created_at, ticket=ticket, message=message,
                               history=[_message(f"c{i}", "customer", said, 0)]))
        template = actions[i % len(EXCHANGES)]
        if template.action != "none":
            verdict = template.model_copy(update={"ticket_id": ticket.id, "message_id": message.id})
            expected.add(delivery_id(verdict, IMPLICIT_TARGET))
    assert len(expected) == count, "every exchange must be one the policy annotates or escalates"
    return out, expected


def _message(mid: str, role: str, body: str, minutes: int) -> Message:
    return Message(id=mid, role=role, body=body, author=Author(id=f"{role}-1"),  # type: ignore[arg-type]
                   created_at=T0 + timedelta(minutes=minutes))


@dataclass(frozen=True)
class Counts:
    sent: int
    expected: int
    delivered: int  # distinct webhook ids received with a 2xx
    duplicates: int  # 2xx POSTs repeating a webhook id already received
    dead_letters: int
    per_message: int  # the most distinct webhook ids any (ticket, message, policy version) received
    lost: int  # expected deliveries that never arrived
    resent: int  # messages the reconciler published again

    def report(self, name: str) -> str:
        line = (f"fault-counts {name}: sent={self.sent} expected={self.expected} delivered={self.delivered} "
                f"duplicates={self.duplicates} dead_letters={self.dead_letters} lost={self.lost} "
                f"resent={self.resent}")
        print("\n" + line)
        return line


def counts(cluster: Cluster, sent: int, expected: set[str]) -> Counts:
    received = list(cluster.receiver.deliveries)
    ids = Counter(d.id for d in received)
    per_message: dict[tuple[str, str, str], set[str]] = {}
    for d in received:
        key = (d.data["ticket_id"], d.data["message_id"], d.data["policy"]["version"])
        per_message.setdefault(key, set()).add(d.id)
    return Counts(sent, len(expected), len(ids), sum(n - 1 for n in ids.values()),
                  cluster.stores.dead_letter_count(), max((len(v) for v in per_message.values()), default=0),
                  len(expected - set(ids)), cluster.resent())


def assert_exactly_once(c: Counts, cluster: Cluster, expected: set[str], *, cut_short: int = 0) -> None:
    """Every expected delivery arrived, nothing else did, one webhook id per message and policy version,
    and nothing is left in the journal. Every signature verified, except on at most `cut_short` requests
    whose body ended before their content-length (a sender killed mid-request)."""
    assert c.lost == 0
    assert {d.id for d in cluster.receiver.deliveries} == expected
    assert c.per_message == 1
    cut = [r for r, _ in cluster.receiver.rejected if len(r.body) < int(r.headers.get("content-length") or 0)]
    assert len(cut) == len(cluster.receiver.rejected) <= cut_short, cluster.receiver.rejected[:3]
    assert cluster.stores.journal.size() == 0
