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

Selected by `worker.app` for `redis://` broker URLs only; other schemes keep kombu's own transport.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from redis import exceptions as redis_errors

TRANSPORT = "worker.broker:Transport"
QUEUE = "apology"  # ticket events (Celery's task_default_queue)
DELIVERY_QUEUE = "apology.deliveries"  # deliveries (worker.app's task_routes)
# Backfill chunks, taken only when no live event or delivery waits, so a million-reply backfill never
# holds up the review of a reply written a second ago.
BACKFILL_QUEUE = "apology.backfill"
QUEUES = (DELIVERY_QUEUE, QUEUE, BACKFILL_QUEUE)  # the order a worker takes them in, strictly (worker.app)

# What a read on a connection Redis closed can raise, through redis-py's parser.
_LOST = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class Channel(kombu_redis.Channel):
    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()  # type: ignore[no-untyped-call]
            except Empty:
                pass
            except _LOST:
                # The reply (and any message in it) went with the connection; `_brpop_read` has cleared
                # `_in_poll` and disconnected, so the rest of the close no longer reads from it.
                pass
        super().close()  # type: ignore[no-untyped-call]

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
