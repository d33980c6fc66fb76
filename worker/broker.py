"""kombu's Redis transport with one fix, so a worker outlives a Redis restart.

When the broker connection drops, Celery closes it before reconnecting. kombu's Redis channel, when a
BRPOP is outstanding, first reads that reply (kombu#1733: a message popped during a warm shutdown would
otherwise be lost). On a connection Redis has just closed that read raises, `close()` stops half-way and
leaves the channel open; Celery then closes the connection once more, after kombu has detached the
transport, and the channel's second attempt to restore its unacknowledged messages fails with
`AttributeError("'NoneType' object has no attribute 'hostname'")`, which Celery treats as unrecoverable: the
worker process exits (kombu 5.7, redis-py 8). Here the failed read is dropped and the close finishes, so the
consumer reconnects in the same process. A message that was in that lost reply is in neither the queue nor
`unacked`; the journal (`worker.journal`) re-sends it.

It also keeps one redis-py client object per connection pool. kombu builds a new `redis.Redis` for every
publish, every message it marks unacknowledged and every ack (`conn_or_acquire`); redis-py's constructor
fills in some 170 response callbacks, which was half the CPU of a publish and two of those per task in the
worker's main process. The client holds no connection of its own (it borrows one from the pool per
command), so one per pool is what kombu's pool already shares.

A third: an entry on a queue list that is not a kombu message (a stray `LPUSH apology hello`, a truncated
envelope) made kombu raise out of its read loop, which Celery treats as unrecoverable: one bad string took
down every worker that popped it. Here it is dead-lettered with the reason and the worker goes on.

A fourth: Redis at its memory limit (`maxmemory`, `noeviction`) still hands out messages (BRPOP frees
memory) but refuses the write that records one as unacknowledged, and kombu raised that out of its read
loop: the worker process exited with "Unrecoverable error: OutOfMemoryError". Here the worker keeps the
message it already holds and runs it (the task waits for room, `worker.tasks.through_outages`); the
journal covers it should the process die before it ends. A requeue or a visibility sweep that Redis
refuses leaves the message where it is, for the next sweep.

A fifth: when the connection drops, kombu puts the messages the worker holds (reserved, or running with
late acknowledgement) back on their queue as it closes the channel; with Redis down that restore fails,
and they stayed in `unacked` until the visibility timeout (25 minutes by default) handed them out
again: a Redis restart held up the events a worker had prefetched, and a backfill waited on its last chunk.
Here their tags are kept, and the first channel that reaches Redis again restores them (`_Stranded`). A
message taken off its queue whose `unacked` record was refused by a dropped connection is kept the same
way and put back on its queue. A worker that dies before Redis is back leaves them to the visibility
timeout and the journal, as before.

A sixth: kombu hands a message back to the queue once it has been in `unacked` longer than the visibility
timeout, whether or not the worker holding it is alive. So the timeout had to outlast every countdown a
worker holds a message for (Celery, "Using Redis": Caveats), 25 minutes here, and a worker killed outright
(SIGKILL, the OOM killer, a lost host) left its messages unreviewed for that long. Here every worker renews
what it holds once per visibility sweep period, as a lease (`_Leases`, on the worker's timer: `worker.app`):
a message's `unacked` score is the last time a live worker vouched for it, so the timeout only has to
outlast a few missed sweeps, and a dead worker's messages are back within minutes, not half an hour.

Selected by `worker.app` for `redis://` broker URLs only; other schemes keep kombu's own transport.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import weakref
from collections.abc import Mapping
from queue import Empty
from typing import Any, TypeVar

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from redis import exceptions as redis_errors

from worker import logs

log = logs.get_logger("worker.broker")

TRANSPORT = "worker.broker:Transport"
QUEUE = "apology"  # ticket events (Celery's task_default_queue)
DELIVERY_QUEUE = "apology.deliveries"  # deliveries (worker.app's task_routes)
# Backfill chunks, taken only when no live event or delivery waits, so a million-reply backfill never
# holds up the review of a reply written a second ago.
BACKFILL_QUEUE = "apology.backfill"
QUEUES = (DELIVERY_QUEUE, QUEUE, BACKFILL_QUEUE)  # the order a worker takes them in, strictly (worker.app)

L = TypeVar("L")  # a label for a queue

# What a read on a connection Redis closed can raise, through redis-py's parser.
_LOST = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class _Stranded:
    """What this process could not hand back to Redis while it was unreachable: tags of messages still in
    `unacked` (restored by tag, a no-op for one the visibility sweep restored meanwhile) and messages
    off their queue that were never recorded there (pushed back). Process-wide, because the channel that
    failed is closed and a new one does the work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tags: list[str] = []
        self._messages: list[tuple[Any, str, str]] = []

    def keep_tags(self, tags: list[str]) -> None:
        with self._lock:
            self._tags += tags

    def keep_message(self, raw: Any, exchange: str, routing_key: str) -> None:
        with self._lock:
            self._messages.append((raw, exchange, routing_key))

    def restore(self, channel: Channel) -> None:
        with self._lock:
            tags, messages, self._tags, self._messages = self._tags, self._messages, [], []
        if not tags and not messages:
            return
        try:
            while tags:
                channel.qos.restore_by_tag(tags[-1])
                tags.pop()
            while messages:
                raw, exchange, routing_key = messages[-1]
                with channel.conn_or_acquire() as client:
                    channel._do_restore_message(raw, exchange, routing_key, client)  # type: ignore[no-untyped-call]
                messages.pop()
        except Exception as exc:  # gone again, or full: the next channel tries the rest; this one still opens
            self.keep_tags(tags)
            for message in messages:
                self.keep_message(*message)
            log.warning("could not yet restore the messages held when redis went away; the next connection "
                        "tries again", error=type(exc).__name__, left=len(tags) + len(messages))
            return
        log.warning("redis is back: restored the messages held when it went away")


STRANDED = _Stranded()


class _Leases:
    """Every QoS of this process, whose held messages the worker renews on its own timer (`worker.app`), so
    that a live worker's messages are never handed out again, whether or not it is consuming just then."""

    def __init__(self) -> None:
        self._holders: weakref.WeakSet[QoS] = weakref.WeakSet()
        self._since: dict[str, float] = {}  # tag -> when this process first renewed it

    def add(self, qos: QoS) -> None:
        self._holders.add(qos)

    def renew(self, longest: float | None = None) -> int:
        """Stamp every message this process holds unacknowledged with the time now; those acknowledged or
        restored meanwhile are left out of the index (ZADD XX). Returns how many were renewed.

        A closed channel's messages are not renewed: they were restored, or, if Redis refused that, are left
        to the visibility timeout. Nor is a message held for longer than `longest` seconds (a thread that
        hangs: Celery's thread pool enforces no time limit): it goes to another worker as before leases.
        A holder that fails does not keep the others from being renewed; the first failure is raised after.
        """
        now = time.time()
        renewed = 0
        held: set[str] = set()
        failed: Exception | None = None
        for qos in list(self._holders):
            if qos.channel.closed:
                continue
            tags = [tag for tag in list(qos._delivered) if tag not in qos._dirty]
            held.update(tags)
            fresh = [tag for tag in tags if longest is None or now - self._since.setdefault(tag, now) <= longest]
            if not fresh:
                continue
            try:
                with qos.channel.conn_or_acquire() as client:
                    renewed += client.zadd(qos.unacked_index_key, dict.fromkeys(fresh, now), xx=True, ch=True)
            except (redis_errors.RedisError, OSError) as exc:
                failed = failed or exc
        self._since = {tag: at for tag, at in self._since.items() if tag in held}
        if failed is not None:
            raise failed
        return renewed


LEASES = _Leases()


class QoS(kombu_redis.QoS):
    """kombu's acknowledgement emulation, riding out a Redis that refuses writes at its memory limit and one
    that goes away while the worker holds messages, and renewing what it holds at every visibility sweep."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        LEASES.add(self)

    def append(self, message: Any, delivery_tag: str) -> None:
        try:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]
        except redis_errors.OutOfMemoryError:
            # Off the queue, not in `unacked`: run it anyway rather than lose it here (the journal has a copy).
            log.warning("redis full (maxmemory): running a message not recorded as unacknowledged")
            virtual.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]
        except _LOST:
            # Off the queue and (most likely) not in `unacked`: back on the queue once Redis answers. Should
            # the record have been written after all, the copy is one more delivery, which deduplication skips.
            delivery = message.delivery_info
            STRANDED.keep_message(message._raw, delivery["exchange"], delivery["routing_key"])
            log.warning("redis unreachable as a message arrived; it goes back on its queue once Redis is back")
            raise

    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)  # type: ignore[no-untyped-call]
        except (*_LOST, redis_errors.ResponseError):  # away, or full (it refuses the restore's transaction)
            # Still in `unacked` (those restored before the failure are not, which makes restoring them again
            # a no-op): restored by the first channel that reaches Redis again, not the visibility timeout.
            STRANDED.keep_tags(list(self._delivered))
            log.warning("redis unreachable or full: messages held by this worker go back on their queues once it "
                        "takes writes again", held=len(self._delivered))
            self._delivered.clear()

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except redis_errors.ResponseError:
            self._forget(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        except redis_errors.ResponseError as exc:
            if not requeue:
                self._forget(delivery_tag)
                return
            # The transaction did nothing: a recorded message stays in `unacked` for the visibility sweep.
            log.warning("redis refused a requeue; the visibility sweep restores it", error=type(exc).__name__)
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]

    def _forget(self, delivery_tag: str) -> None:
        """Drop a finished message from `unacked` on a full Redis. It refuses every command queued in a
        transaction (MULTI), deletions included, but not the same deletions sent on their own."""
        with self.channel.conn_or_acquire() as client:
            client.pipeline(transaction=False).zrem(self.unacked_index_key, delivery_tag) \
                .hdel(self.unacked_key, delivery_tag).execute()
        virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        try:
            super().restore_visible(start, num, interval)  # type: ignore[no-untyped-call]
        except redis_errors.ResponseError as exc:  # the sweep's lock or its LPUSH refused: the next sweep
            log.warning("redis refused the visibility sweep; trying again at the next", error=type(exc).__name__)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # raises unless Redis answers a ping
        STRANDED.restore(self)

    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except Empty:
                pass
            except _LOST:
                # The reply (and any message in it) went with the connection; `_brpop_read` has cleared
                # `_in_poll` and disconnected, so the rest of the close no longer reads from it.
                pass
        super().close()  # type: ignore[no-untyped-call]

    def _brpop_read(self, **options: Any) -> bool:
        """kombu's `_brpop_read` (5.7), but an entry that is not a message envelope is dead-lettered."""
        try:
            try:
                dest_item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next turn reconnects
                raise
            if not dest_item:
                raise Empty()
            dest, item = dest_item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]  # type: ignore[no-untyped-call]
            self._queue_cycle.rotate(dest)
            payload, fault = envelope(item)
            if fault is not None:
                _dead_letter(dest, item, fault)
            else:
                self.connection._deliver(payload, dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            reauth = getattr(self, "_flush_brpop_reauth", None)  # kombu 5.7 on (the lock pins 5.7.0)
            if reauth is not None:
                reauth()

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        pool = self.pool
        cached = getattr(self, "_sync_client", None)
        if cached is None or cached[0] is not pool:  # the first call, or a new pool after a fork or close
            cached = (pool, super()._create_client())  # type: ignore[no-untyped-call]
            self._sync_client = cached
        return cached[1]


class Transport(kombu_redis.Transport):
    Channel = Channel


def queue_keys(queues: tuple[str, ...] = QUEUES) -> list[str]:
    """The Redis lists kombu keeps our queues in: one per priority step (all ours go to the first)."""
    sep = kombu_redis.Channel.sep
    return [queue if not step else f"{queue}{sep}{step}" for queue in queues
            for step in kombu_redis.PRIORITY_STEPS]


def look(client: Any, queues: Mapping[str, L], *, held: bool = True, most: int = 5_000,
         most_bytes: int = 8 << 20) -> tuple[set[L], list[tuple[str, list[Any]]] | None]:
    """One consistent read of the broker (a transaction): which of `queues` (name -> label) are empty, by
    label, and the task calls (name, positional arguments) of every message a worker holds unacknowledged.

    A record that is not a Celery task message this code can read is left out. The held messages are not
    read (None) unless asked for, nor when more than `most` are held or they take more than `most_bytes`
    (a backlog of countdowns): reading and decoding them would hold up the caller, a worker's main loop,
    and Redis itself (10,000 records of 4 KB took 0.38 s and blocked Redis for 39 ms)."""
    pairs = [(label, key) for name, label in queues.items() for key in queue_keys((name,))]
    unacked = kombu_redis.Channel.unacked_key
    read_held = held and client.hlen(unacked) <= most and _size(client, unacked) <= most_bytes
    pipe = client.pipeline(transaction=True)
    for _, key in pairs:
        pipe.llen(key)
    if read_held:
        pipe.hvals(unacked)
    replies = pipe.execute()
    lengths = replies[:len(pairs)]
    empty = set(queues.values()) - {label for (label, _), length in zip(pairs, lengths, strict=True) if length}
    if not read_held:
        return empty, None
    return empty, [call for raw in replies[-1] if (call := task_call(raw)) is not None]


def _size(client: Any, key: str) -> int:
    """Redis's estimate of a key's memory (MEMORY USAGE), or 0 where the server has no such command."""
    try:
        return int(client.memory_usage(key) or 0)
    except redis_errors.ResponseError:
        return 0


def task_call(raw: bytes | str) -> tuple[str, list[Any]] | None:
    """The task name and positional arguments of an `unacked` record (kombu's [envelope, exchange, routing
    key]; Celery's message protocol 2 body is [args, kwargs, embed]), or None if it is not one."""
    try:
        message = json.loads(bytes_to_str(raw))[0]  # type: ignore[no-untyped-call]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(message["headers"]["task"]), list(args)
    except (ValueError, LookupError, TypeError, AttributeError, binascii.Error):
        return None


def envelope(item: bytes | str) -> tuple[dict[str, Any] | None, str | None]:
    """A queue entry as kombu's message envelope, or why it is not one."""
    try:
        payload = json.loads(bytes_to_str(item))  # type: ignore[no-untyped-call]
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(payload, dict) or "body" not in payload:
        return None, "not a message envelope (no body)"
    properties = payload.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties \
            or not isinstance(properties.get("delivery_info"), dict):
        return None, "not a message envelope (no properties.delivery_tag and delivery_info)"
    return payload, None


def _dead_letter(queue: str, item: bytes | str, fault: str) -> None:
    kind = "delivery" if queue == DELIVERY_QUEUE else "event"
    keep_refused(kind, f"an entry on queue {queue} is not a task message: {fault}", item, queue,
                 "queue entry dead-lettered", fault)


def keep_refused(kind: str, reason: str, raw: bytes | str, queue: str, event: str, logged: str) -> None:
    """Log a message the worker cannot take (never its body, which may hold a customer's words) and keep the
    body as a dead letter; the worker goes on whatever happens here. The transport and the consumer both
    refuse messages this way."""
    log.error(event, queue=queue, reason=logged, size=len(raw))
    try:
        from worker import bootstrap  # the transport is imported by the app, which bootstrap imports

        bootstrap.stores(bootstrap.settings()).add_dead_letter(kind, reason, raw)
    except Exception as exc:  # the message is named in the log above
        log.error("could not dead-letter a refused message", queue=queue, error=f"{type(exc).__name__}: {exc}")
