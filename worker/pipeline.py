"""The service layer: what happens to a ticket event and to a delivery, whatever runs it.

Celery tasks, the CLI and the tests call these functions with their dependencies (`Deps`, wired once in
`worker.bootstrap`); nothing here knows about Celery. Guarantees:
- an event is marked done only after its deliveries are enqueued, so a worker killed mid-way leaves it to
  be redelivered (acks_late) and handled again; a short lock keeps two workers off the same event;
- a reply is judged only once the earlier messages of its ticket that were queued before it are
  remembered (bounded waiting), so the queue's order does not change the verdict;
- every delivery has a stable id; it is sent until a 2xx, then recorded and never sent again;
- a delivery goes only to an address `Deps.egress` allows (no private, loopback or link-local ones unless
  configured), so a target pointed at internal services is dead-lettered, not sent;
- every event and delivery is journalled before it is published and settled in the step that records its
  final state, so one the broker loses on its way to a worker is published again (`worker.journal`).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from worker import logs, metrics
from worker.delivery import backoff, failed, send
from worker.egress import Egress
from worker.engine import Policy, review_reply, reviewable
from worker.engine.review import CustomerCache
from worker.errors import ConfigError, DeliveryError, EventError
from worker.history import describe_validation_error
from worker.journal import Kind, event_key
from worker.models import Message, TicketEvent, TicketHistory, Verdict
from worker.routing import Router
from worker.stores import Stores, new_token, timestamp
from worker.targets.base import delivery_id
from worker.tracing import NoTrace, Timeline, Trace

log = logs.get_logger("worker.pipeline")

EventStatus = Literal["judged", "remembered", "duplicate", "busy", "waiting", "rejected"]
DeliveryStatus = Literal["delivered", "skipped", "busy", "retry", "throttled", "dead"]
BUSY_RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Limits:
    order_wait_attempts: int = 15
    order_wait_first: float = 0.1
    order_wait_max: float = 5.0
    delivery_max_attempts: int = 10
    backoff_base: float = 2.0
    backoff_max: float = 600.0


@dataclass
class Deps:
    """Everything the handlers touch; tests pass fakes, `worker.bootstrap` passes the real ones."""

    stores: Stores
    policy: Policy
    router: Router
    send_delivery: Callable[[dict[str, Any]], None]
    http: Callable[[], httpx.Client]
    limits: Limits = field(default_factory=Limits)
    # Seconds to wait before the next request to a target may go (its shared token bucket); 0 = now.
    throttle: Callable[[str], float] = lambda target: 0.0
    cache: CustomerCache = field(default_factory=lambda: LRU(20_000))
    egress: Egress = field(default_factory=Egress)  # refuses private addresses unless configured
    trace: Trace = field(default_factory=NoTrace)  # stage timestamps for the benchmark (worker.tracing)


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """The deliver task's argument: one verdict for one target, JSON-serialisable."""

    delivery_id: str
    target: str
    verdict: dict[str, Any]
    event: str  # source:event_id, for the logs

    def to_payload(self) -> dict[str, Any]:
        # Shallow on purpose: `dataclasses.asdict` deep-copies the verdict, which cost more than sending it.
        return {"delivery_id": self.delivery_id, "target": self.target, "verdict": self.verdict,
                "event": self.event}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DeliveryJob:
        return cls(str(payload["delivery_id"]), str(payload["target"]), dict(payload["verdict"]),
                   str(payload.get("event", "")))


@dataclass(frozen=True, slots=True)
class EventOutcome:
    status: EventStatus
    verdict: Verdict | None = None
    deliveries: tuple[DeliveryJob, ...] = ()
    retry_in: float | None = None
    dead_letter: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    status: DeliveryStatus
    retry_in: float | None = None
    status_code: int | None = None
    dead_letter: str | None = None


class LRU(OrderedDict[Any, Any]):
    """A bounded cache of customer-message readings, shared by the replies of one worker process."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)


# -- producing -------------------------------------------------------------------------------------------
def submit_events(events: Iterable[TicketEvent], stores: Stores,
                  send_event: Callable[[dict[str, Any]], None]) -> int:
    """Record every event as pending for its ticket, then enqueue them in the given order.

    Recording first is what lets a reply wait for an earlier message that the queue hands out later.
    """
    batch = list(events)
    now = time.time()
    payloads = [e.model_dump(mode="json") for e in batch]
    # Journalled in the same round trip, before publishing: a message the broker loses on its way to a
    # worker is re-sent by the reconciler (worker.journal).
    stores.accept(((ticket_key(e.source, e.ticket.id), e.message.id, _time(e.message, e, now)) for e in batch),
                  (("event", event_key(e.source, e.event_id), [p]) for e, p in zip(batch, payloads, strict=True)))
    for payload in payloads:
        send_event(payload)
    return len(batch)


def ticket_key(source: str, ticket_id: str) -> str:
    """Where a ticket's conversation memory and order live: its source and id, since two helpdesks number
    their tickets alike (a team moving from Freshdesk to Zendesk has a ticket 5158 in each)."""
    return f"{source}:{ticket_id}"


def parse_event(payload: str | bytes | dict[str, Any]) -> TicketEvent:
    """The canonical event, or an EventError saying what is wrong with it."""
    try:
        if isinstance(payload, dict):
            return TicketEvent.model_validate(payload)
        return TicketEvent.model_validate_json(payload)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise EventError(f"not valid JSON: {exc.errors()[0]['msg']}") from None
        raise EventError(f"not a canonical ticket event: {describe_validation_error(exc)}") from None


# -- consuming ---------------------------------------------------------------------------------------------
def handle_event(payload: str | bytes | dict[str, Any], deps: Deps, attempt: int = 0,
                 owner: str | None = None) -> EventOutcome:
    """`owner` names the task (its id, the same in its retries and redeliveries): the event's lock is taken in
    its name, so a run of the same task after a failure takes its own lock back instead of waiting it out."""
    line = Timeline(deps.trace, f"start.{attempt}")
    try:
        event = parse_event(payload)
    except EventError as exc:
        raw = payload if isinstance(payload, str | bytes) else json.dumps(payload, default=str)
        return _reject(str(exc), raw, deps, _journalled(payload))

    line.key = f"{event.source}:{event.event_id}"
    try:
        return _handle(event, deps, attempt, line, owner)
    finally:
        line.mark("done")
        line.flush()


def reject_call(args: Sequence[Any], kwargs: dict[str, Any], deps: Deps) -> EventOutcome:
    """Dead-letter an event task whose message does not fit `(payload[, busy])`: a producer in another
    language that names the argument, or sends none or several, would otherwise fail inside Celery, and
    the event would be lost with nothing but a log line to say so."""
    names = ", ".join(sorted(kwargs)) or "none"
    reason = (f"wrong task arguments: the event task takes (payload) or (payload, busy); it was sent "
              f"{len(args)} positional argument(s) and keyword(s): {names}")
    candidates = [*args, *kwargs.values()]
    settles = _journalled(candidates[0]) if len(candidates) == 1 else None
    return _reject(reason, json.dumps({"args": list(args), "kwargs": kwargs}, default=str), deps, settles)


def _reject(reason: str, raw: str | bytes, deps: Deps, settles: tuple[Kind, str] | None) -> EventOutcome:
    letter = deps.stores.add_dead_letter("event", reason, raw, settles=settles)
    log.warning("event rejected", reason=reason, dead_letter=letter)
    metrics.EVENTS.labels("rejected").inc()
    return EventOutcome("rejected", dead_letter=letter)


def _handle(event: TicketEvent, deps: Deps, attempt: int, line: Timeline, owner: str | None) -> EventOutcome:
    message, ticket = event.message, event.ticket
    logs.bind(event_id=f"{event.source}:{event.event_id}", ticket_id=ticket.id, message_id=message.id)
    stores, limits = deps.stores, deps.limits
    token = owner or new_token()
    judge = reviewable(message, deps.policy)
    fallback = _time(None, event, time.time())
    wait_before = (message.created_at.timestamp()
                   if judge and message.created_at is not None and attempt < limits.order_wait_attempts
                   else None)
    delay = min(limits.order_wait_first * (2 ** attempt), limits.order_wait_max)
    taken = stores.take_event(event.source, event.event_id, ticket_key(event.source, ticket.id),
                              [*event.history, message], token, wait_before=wait_before, finish=not judge,
                              default_time=fallback, retry_in=max(delay, BUSY_RETRY_SECONDS))
    line.mark(f"taken.{attempt}")
    if taken.status == "done":
        metrics.EVENTS.labels("duplicate").inc()
        log.info("duplicate event skipped")
        return EventOutcome("duplicate")
    if taken.status == "busy":
        log.info("event is being handled by another worker; checking again later")
        return EventOutcome("busy", retry_in=BUSY_RETRY_SECONDS)
    if taken.status == "wait":
        line.mark(f"wait.{attempt}")
        log.info("reply waits for earlier messages of its ticket", waiting=taken.waiting,
                 attempt=attempt, retry_in=delay)
        return EventOutcome("waiting", retry_in=delay)
    if not judge:
        metrics.EVENTS.labels("remembered").inc()
        return EventOutcome("remembered")
    try:
        return _judge(event, taken.conversation, deps, attempt, token, fallback, line)
    except BaseException:
        stores.finish_event(event.source, event.event_id, token, done=False)
        raise


def _judge(event: TicketEvent, conversation: list[Message], deps: Deps, attempt: int, token: str,
           fallback: float, line: Timeline) -> EventOutcome:
    message, ticket, stores = event.message, event.ticket, deps.stores
    if attempt >= deps.limits.order_wait_attempts and stores.pending(ticket_key(event.source, ticket.id)):
        log.warning("judging a reply although earlier messages of its ticket are still queued",
                    attempts=attempt)
    earlier = context_for(message, conversation, event.history, fallback)
    started = time.perf_counter()
    verdict = review_reply(message, earlier, ticket, deps.policy, deps.cache)
    metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
    line.mark("evaluated")
    metrics.VERDICTS.labels(verdict.action).inc()
    jobs = tuple(
        DeliveryJob(delivery_id(verdict, name), name, verdict.model_dump(mode="json"),
                    f"{event.source}:{event.event_id}")
        for name in deps.router.destinations(verdict, ticket)
    )
    payloads = [job.to_payload() for job in jobs]
    if jobs:
        stores.journal.record(("delivery", job.delivery_id, [p]) for job, p in zip(jobs, payloads, strict=True))
    for payload in payloads:
        deps.send_delivery(payload)
    line.mark("published")
    stores.finish_event(event.source, event.event_id, token)
    metrics.EVENTS.labels("judged").inc()
    log.info("reply judged", action=verdict.action, score=verdict.score, deliveries=len(jobs),
             rules=[f.rule for f in verdict.findings])
    return EventOutcome("judged", verdict, jobs)


def context_for(reply: Message, remembered: Sequence[Message], history: Sequence[Message],
                fallback: float) -> list[Message]:
    """The messages before the reply: memory and the event's own history, merged by id, in time order."""
    given = {m.id for m in history}
    merged = {m.id: m for m in remembered}
    merged.update((m.id, m) for m in history)
    merged.pop(reply.id, None)
    at = timestamp(reply.created_at, fallback)

    def key(m: Message) -> float:
        return timestamp(m.created_at, fallback)

    return sorted((m for m in merged.values() if key(m) < at or (key(m) == at and m.id in given)), key=key)


def deliver(payload: dict[str, Any], deps: Deps, attempt: int = 0, owner: str | None = None) -> DeliveryOutcome:
    """`owner`: as for `handle_event`, the task whose name the delivery's lock is taken in."""
    line = Timeline(deps.trace, f"deliver.{attempt}")
    try:
        job = DeliveryJob.from_payload(payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Not a job this code wrote (a hand-made or corrupted message): keep it, with why, and go on.
        reason = f"not a delivery job: {type(exc).__name__}: {exc}"
        raw = payload if isinstance(payload, str | bytes) else json.dumps(payload, default=str)
        letter = deps.stores.add_dead_letter("delivery", reason, raw)
        log.warning("delivery job rejected", reason=reason, dead_letter=letter)
        return DeliveryOutcome("dead", dead_letter=letter)
    line.key = job.event
    logs.bind(delivery_id=job.delivery_id, target=job.target, event_id=job.event or None,
              ticket_id=job.verdict.get("ticket_id"), message_id=job.verdict.get("message_id"))
    try:
        outcome = _deliver(job, deps, attempt, line, owner)
        if outcome.retry_in is not None:
            # Still in progress: its journal entry is not due before the retry has run.
            deps.stores.journal.touch("delivery", job.delivery_id, outcome.retry_in)
        return outcome
    finally:
        line.flush()


def _deliver(job: DeliveryJob, deps: Deps, attempt: int, line: Timeline, owner: str | None) -> DeliveryOutcome:
    stores = deps.stores
    token = owner or new_token()
    claim = stores.begin_delivery(job.delivery_id, token)
    if claim == "delivered":
        metrics.DELIVERIES.labels(job.target, "skipped").inc()
        log.info("already delivered; skipped")
        return DeliveryOutcome("skipped")
    if claim == "busy":
        return DeliveryOutcome("busy", retry_in=BUSY_RETRY_SECONDS)
    delivered = False
    try:
        try:
            target = deps.router.target(job.target)
        except ConfigError as exc:
            return _dead(deps, job, str(exc), None, "")
        wait = deps.throttle(job.target)
        if wait > 0:
            metrics.DELIVERIES.labels(job.target, "throttled").inc()
            return DeliveryOutcome("throttled", retry_in=wait)
        try:
            request = target.build(Verdict.model_validate(job.verdict), job.delivery_id)
            deps.egress.check(request.url)
            result = send(deps.http(), request)
        except DeliveryError as exc:  # a refused address (SSRF guard), a ticket id the target cannot use
            result = failed(exc)
        line.mark(f"sent.{attempt}")
        metrics.DELIVERY_SECONDS.labels(job.target).observe(result.seconds)
        if result.outcome == "delivered":
            delivered = True
            metrics.DELIVERIES.labels(job.target, "delivered").inc()
            log.info("delivered", status=result.status, seconds=round(result.seconds, 4))
            return DeliveryOutcome("delivered", status_code=result.status)
        if result.outcome == "retry" and attempt + 1 < deps.limits.delivery_max_attempts:
            delay = backoff(attempt, deps.limits.backoff_base, deps.limits.backoff_max, result.retry_after)
            metrics.DELIVERIES.labels(job.target, "retry").inc()
            log.warning("delivery failed; will retry", reason=result.describe(), attempt=attempt + 1,
                        retry_in=delay)
            return DeliveryOutcome("retry", retry_in=delay, status_code=result.status)
        reason = (f"gave up after {attempt + 1} attempts: {result.describe()}"
                  if result.outcome == "retry" else f"refused: {result.describe()}")
        return _dead(deps, job, reason, result.status, result.body)
    finally:
        stores.finish_delivery(job.delivery_id, token, delivered=delivered)


def _dead(deps: Deps, job: DeliveryJob, reason: str, status: int | None, body: str) -> DeliveryOutcome:
    letter = deps.stores.add_dead_letter("delivery", reason, job.to_payload(), status=status,
                                         response_body=body[:2000], settles=("delivery", job.delivery_id))
    metrics.DELIVERIES.labels(job.target, "dead").inc()
    log.error("delivery dead-lettered", reason=reason, status=status, dead_letter=letter)
    return DeliveryOutcome("dead", status_code=status, dead_letter=letter)


def _journalled(payload: object) -> tuple[Kind, str] | None:
    """The journal entry of a payload that is not a canonical event, if it names one: producers journal
    only canonical events, but a worker older than its producer may reject one."""
    if isinstance(payload, dict):
        source, event_id = payload.get("source"), payload.get("event_id")
        if isinstance(source, str) and isinstance(event_id, str):
            return "event", event_key(source, event_id)
    return None


def _time(message: Message | None, event: TicketEvent, now: float) -> float:
    if message is not None and message.created_at is not None:
        return message.created_at.timestamp()
    occurred: datetime | None = event.occurred_at
    return occurred.timestamp() if occurred is not None else now


def history_events(history: TicketHistory, source: str = "history") -> list[TicketEvent]:
    """A history line as one canonical event per message, in order; ids derive from ticket and message.

    Sending the same file twice therefore yields the same event ids, which deduplication drops.
    """
    return [TicketEvent(event_id=f"{history.ticket.id}/{m.id}", source=source, type="message.created",
                        occurred_at=m.created_at, ticket=history.ticket, message=m)
            for m in history.messages]
