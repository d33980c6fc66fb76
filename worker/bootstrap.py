"""The one place that wires dependencies: settings in, stores, policy, router and senders out.

Entrypoints (Celery tasks, the CLI, later the gateway) ask here and never build adapters themselves,
so tests can hand the service layer fakes without patching.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import cache
from typing import Any, TypeVar

import httpx
import redis
from kombu.exceptions import OperationalError

from worker import broker, logs, reconcile
from worker.delivery import new_client
from worker.egress import Egress
from worker.engine import Policy, load_policy
from worker.journal import Kind, entry_key, key_of
from worker.pipeline import Deps, Limits
from worker.ratelimit import TokenBuckets
from worker.routing import Router, build_router
from worker.settings import Settings, load_settings
from worker.stores import Stores
from worker.tracing import NoTrace, RedisTrace, Trace

HANDLE_EVENT = "apology.handle_event"
DELIVER = "apology.deliver"
BACKFILL_CHUNK = "apology.backfill_chunk"
TASKS: dict[Kind, str] = {"event": HANDLE_EVENT, "delivery": DELIVER, "chunk": BACKFILL_CHUNK}  # by journal kind
_KIND_OF_TASK = {name: kind for kind, name in TASKS.items()}
# The queue each kind is published to (worker.app's task_routes), and the kind it holds.
QUEUE_KINDS: dict[str, Kind] = {broker.QUEUE: "event", broker.DELIVERY_QUEUE: "delivery",
                                broker.BACKFILL_QUEUE: "chunk"}
# Redis (the stores or the broker) away for a moment, as in a restart or a failover: what tasks run again
# (worker.tasks) and producers wait out (worker.cli.backfill_cmd) instead of failing.
T = TypeVar("T")
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, OperationalError)
# Redis at its memory limit (`maxmemory` under `noeviction`, as deployments must run it): it answers, but
# refuses every write until memory is freed or the limit raised. Work that needs a write waits for that as for
# an outage; a ping alone does not tell it is over.
FULL_ERRORS = (redis.exceptions.OutOfMemoryError,)


def has_room(client: redis.Redis) -> bool:
    """Whether Redis takes writes: under its `maxmemory`, or with none set. A full one still answers reads,
    a ping included, so this asks INFO."""
    memory = client.info("memory")
    return not memory.get("maxmemory") or int(memory["used_memory"]) < int(memory["maxmemory"])


def outage_pauses(patience: float) -> Iterator[float]:
    """The pauses between tries while Redis is away: 0.1 s, doubling to 2 s, for as long as the next pause
    still ends within `patience` seconds of this call (then the caller gives up)."""
    deadline = time.monotonic() + patience  # now, not at the first pause: the first try counts too

    def pauses() -> Iterator[float]:
        pause = 0.1
        while time.monotonic() + pause <= deadline:
            yield pause
            pause = min(pause * 2, 2.0)

    return pauses()


def riding_out(run: Callable[[], T], client: redis.Redis, say: Callable[[str], None] | None, *, what: str,
               later: str, patience: float) -> T:
    """Run `run` again once Redis is back when an outage interrupts it, or has room again when it is full
    (at `maxmemory` it refuses writes), so neither ends a producer's work; `run` must be safe to run again
    (a backfill's producer skips what it enqueued before; events are deduplicated by id). One that lasts
    longer than `patience` raises, which the CLI reports as "cannot reach Redis" or "Redis is full" (exit
    2). `what` names the work in what it says, `later` how to continue it by hand."""
    while True:
        try:
            return run()
        except OUTAGE_ERRORS + FULL_ERRORS as exc:
            full = isinstance(exc, FULL_ERRORS)
            if say is not None:
                why = "Redis is full (maxmemory): it refuses writes" if full else "Redis unreachable"
                say(f"{what}: {why} ({type(exc).__name__}); waiting up to {patience:.0f} s for it to "
                    f"{'have room' if full else 'come back'} ({later})")
            if not _await_redis(client, patience, room=full):
                raise
            if say is not None:
                say(f"{what}: Redis is back; continuing")


def _await_redis(client: redis.Redis, patience: float, room: bool = False) -> bool:
    """Whether Redis answers again within `patience` seconds (`outage_pauses` between looks), and with
    `room`, has memory for writes again (`has_room`)."""
    pauses, wake = outage_pauses(patience), threading.Event()
    while True:
        try:
            if not room:
                return bool(client.ping())
            if has_room(client):
                return True
        except OUTAGE_ERRORS:
            pass
        pause = next(pauses, None)
        if pause is None:
            return False
        wake.wait(pause)


def once(build: Callable[[], T], lock: AbstractContextManager[Any] | None = None) -> Callable[[], T]:
    """`build()` run once per process, by whichever thread asks first, the others waiting for it.

    functools.cache lets every thread that asks before the first build ends run its own: a thread-pool
    worker's (the Procfile's deliverer) 32 threads each compiled the policy and opened their own Redis and
    HTTP pools on their first task. Call it after the fork (sockets are not shared across one).
    """
    built: list[T] = []
    guard = lock if lock is not None else threading.Lock()

    def get() -> T:
        if not built:
            with guard:
                if not built:
                    built.append(build())
        return built[0]

    return get


log = logs.get_logger("worker.bootstrap")


@cache
def settings() -> Settings:
    return load_settings()


def stores(cfg: Settings, client: redis.Redis | None = None) -> Stores:
    return Stores(
        client if client is not None else redis.Redis.from_url(cfg.redis_url, health_check_interval=30),
        memory_messages=cfg.memory_messages, memory_ttl=cfg.memory_ttl_seconds,
        dedup_ttl=cfg.dedup_ttl_seconds, lock_seconds=cfg.event_lock_seconds,
        pending_stale=cfg.pending_stale_seconds, delivered_ttl=cfg.delivered_ttl_seconds,
        payload_max=cfg.dead_letter_payload_max, journal_ttl=cfg.journal_ttl_seconds,
    )


def router(cfg: Settings) -> Router:
    secret = cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else None
    return build_router(str(cfg.webhook_url) if cfg.webhook_url else None, secret, cfg.routes)


def limits(cfg: Settings) -> Limits:
    return Limits(
        order_wait_attempts=cfg.order_wait_attempts, order_wait_first=cfg.order_wait_first_seconds,
        order_wait_max=cfg.order_wait_max_seconds, delivery_max_attempts=cfg.delivery_max_attempts,
        backoff_base=cfg.delivery_backoff_seconds, backoff_max=cfg.delivery_backoff_max_seconds,
    )


_preloaded: dict[str | None, Policy] = {}


def policy_name(cfg: Settings) -> str | None:
    return cfg.policy or os.environ.get("APOLOGY_POLICY")


def check_at_start(cfg: Settings) -> None:
    """Load the policy and build the routes in a worker's main process before it takes any task: a bad
    policy or routes file stops the worker at start, naming file, line and field (PolicyError, ConfigError),
    instead of a worker that says it is ready and fails every task. The policy is kept, so a prefork pool's
    processes, forked after this, share it instead of each compiling it again."""
    name = policy_name(cfg)
    _preloaded[name] = load_policy(name)
    router(cfg)


def deps(cfg: Settings, send_delivery: Callable[[dict[str, Any]], None],
         client: redis.Redis | None = None) -> Deps:
    http: list[httpx.Client] = []

    def http_client() -> httpx.Client:
        # Created on first use, in the process that uses it (never across a fork).
        if not http:
            http.append(new_client(cfg.http_connect_timeout, cfg.http_read_timeout))
        return http[0]

    the_stores = stores(cfg, client)
    the_router = router(cfg)
    buckets = TokenBuckets(the_stores.redis, the_router.rates)
    trace: Trace = RedisTrace(the_stores.redis) if cfg.trace_stages else NoTrace()
    name = policy_name(cfg)
    return Deps(the_stores, _preloaded.get(name) or load_policy(name),
                the_router, send_delivery, http_client, limits(cfg), throttle=buckets.take, egress=egress(cfg),
                trace=trace)


def egress(cfg: Settings) -> Egress:
    return Egress.from_settings(cfg.allow_private_targets, cfg.target_allowlist)


def warm(deps: Deps) -> None:
    """Pay the one-off costs (policy, TLS context of the HTTP client, the engine's lazy tables) now."""
    from worker.engine import review_reply
    from worker.models import Message, Ticket

    deps.http()
    earlier = [Message(id="warm-c", role="customer", body="My order arrived broken and I am upset.")]
    reply = Message(id="warm-a", role="agent", body="I'm sorry it arrived broken; a refund is on its way.")
    review_reply(reply, earlier, Ticket(id="warm"), deps.policy)


def event_options(payload: Any) -> dict[str, str]:
    """Task options that make task events (Flower, `celery events`) name an event by its id.

    Left to Celery, every publish builds a repr of the whole argument, here the customer's or agent's
    message, and ships it in the task's headers and events: message bodies in Flower, and a third of the
    CPU of the publish.
    """
    label = f"{payload.get('source')}:{payload.get('event_id')}" if isinstance(payload, dict) else "raw payload"
    return {"argsrepr": repr([label]), "kwargsrepr": "{}"}


def delivery_options(job: dict[str, Any]) -> dict[str, str]:
    """As `event_options`, for a delivery: its id, not the verdict (which quotes the reply)."""
    return {"argsrepr": repr([str(job.get("delivery_id"))]), "kwargsrepr": "{}"}


def send_event(payload: Any, app: Any = None) -> None:
    """Enqueue one event for handle_event (by task name: producers need not import the tasks)."""
    if app is None:
        from worker.app import app
    app.send_task(HANDLE_EVENT, args=[payload], **event_options(payload))


def send_delivery(job: dict[str, Any], app: Any = None, countdown: float | None = None) -> None:
    if app is None:
        from worker.app import app
    app.send_task(DELIVER, args=[job], countdown=countdown, **delivery_options(job))


def publish(kind: Kind, args: list[Any]) -> None:
    """Publish a journal entry's message again (the reconciler)."""
    from worker.app import app

    options: dict[str, str] = {}
    if kind == "event" and args:
        options = event_options(args[0])
    elif kind == "delivery" and args and isinstance(args[0], dict):
        options = delivery_options(args[0])
    app.send_task(TASKS[kind], args=args, **options)


def broker_view(client: redis.Redis, held: bool = True) -> reconcile.BrokerView:
    """The broker as the reconciler needs it, in one read: which kinds' queues are empty, and (if asked
    for and not too many) the journal entries of the messages workers hold."""
    try:
        idle, calls = broker.look(client, QUEUE_KINDS, held=held)
    except redis.TimeoutError:
        if not held:
            raise
        idle, calls = broker.look(client, QUEUE_KINDS, held=False)  # this sweep tests by age only
    if calls is None:
        return reconcile.BrokerView(frozenset(idle), None)
    return reconcile.BrokerView(frozenset(idle), frozenset(
        entry_key(kind, key) for name, args in calls
        if (kind := _KIND_OF_TASK.get(name)) is not None and (key := key_of(kind, args)) is not None))


def sweeper(cfg: Settings) -> tuple[Stores, Callable[[bool], reconcile.Sweep]]:
    """The stores and one journal sweep over the real broker and producer (the workers' timer, the CLI).

    Short socket timeouts: a worker runs the sweep in its main loop, which must not hang on a dead Redis.
    """
    client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2, socket_timeout=5)
    broker_client = client if cfg.redis_url == cfg.broker_url else redis.Redis.from_url(
        cfg.broker_url, socket_connect_timeout=2, socket_timeout=5)
    the_stores = stores(cfg, client)

    def run(dry_run: bool = False) -> reconcile.Sweep:
        return reconcile.sweep(the_stores, look=lambda held: broker_view(broker_client, held), publish=publish,
                               safe_age=cfg.reconcile_after,
                               max_sends=cfg.reconcile_max_sends, missing_after=cfg.reconcile_missing,
                               dry_run=dry_run)

    return the_stores, run


def lease_tick(cfg: Settings) -> Callable[[], None]:
    """What each worker runs every restore sweep period: renew the messages it holds (`worker.broker`)."""
    def tick() -> None:
        try:
            broker.LEASES.renew(cfg.lease_max_seconds)
        except (redis.RedisError, OSError, OperationalError) as exc:  # away or full: the next tick tries again
            log.warning("lease renewal skipped: redis unavailable or full", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # a bug here must not take the worker's main loop down with it
            log.exception("lease renewal failed")

    return tick


def sweep_tick(cfg: Settings) -> Callable[[], None]:
    """What each worker runs every `reconcile_interval`: a sweep, if no other worker took this interval's."""
    the_stores, run = sweeper(cfg)

    def tick() -> None:
        try:
            if the_stores.journal.take_sweep(cfg.reconcile_interval * 0.9):
                run(False)
        except (redis.RedisError, OSError, OperationalError) as exc:
            log.warning("journal sweep skipped: redis unavailable", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # a bug here must not take the worker's main loop down with it
            log.exception("journal sweep failed")

    return tick
