"""Stage timestamps of each event on its way through the workers, for the latency benchmark.

Off by default. With `APOLOGY_TRACE_STAGES=true` every task writes, once when it ends, the wall-clock
times (`time.time()`, comparable across processes on one machine) of the stages it went through into a
Redis hash per event, `aw:trace:<source>:<event_id>`, kept for an hour:

    start.N      handle_event attempt N began (N = Celery's retry count)
    taken.N      deduplication, order check and conversation memory (one Redis call) returned
    wait.N       attempt N found earlier messages of the ticket still queued and will retry
    evaluated    the engine returned the verdict
    published    its deliveries were handed to the broker
    done         handle_event finished (remembered, judged, or a duplicate)
    deliver.N    deliver attempt N began
    sent.N       attempt N had the target's answer

With several targets, the deliveries of one event share the hash (the last one's stamps win).

`bench/pipeline.py` reads them back to break the enqueue-to-webhook latency down by stage. Stamps are
collected in memory and written in one round trip per task, so tracing costs a task one Redis call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Protocol

import redis

from worker.redis_values import as_text

PREFIX = "aw:trace:"
TTL_SECONDS = 3600


class Trace(Protocol):
    def write(self, key: str, stamps: Mapping[str, float]) -> None: ...


class NoTrace:
    """The default: nothing recorded."""

    def write(self, key: str, stamps: Mapping[str, float]) -> None:
        pass


class RedisTrace:
    def __init__(self, client: redis.Redis, ttl: int = TTL_SECONDS) -> None:
        self.redis = client
        self.ttl = ttl

    def write(self, key: str, stamps: Mapping[str, float]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(PREFIX + key, mapping={k: repr(v) for k, v in stamps.items()})
        pipe.expire(PREFIX + key, self.ttl)
        with contextlib.suppress(redis.RedisError):  # a measurement aid must never fail what it measures
            pipe.execute()


class Timeline:
    """The stamps of one task run, starting with `first` now; `flush` writes them under `key`."""

    __slots__ = ("key", "on", "stamps", "trace")

    def __init__(self, trace: Trace, first: str) -> None:
        self.trace = trace
        self.on = not isinstance(trace, NoTrace)
        self.key = ""
        self.stamps: dict[str, float] = {first: time.time()} if self.on else {}

    def mark(self, stage: str) -> None:
        if self.on:
            self.stamps[stage] = time.time()

    def flush(self) -> None:
        if self.on and self.key:
            self.trace.write(self.key, self.stamps)


def read(client: redis.Redis, keys: list[str]) -> dict[str, dict[str, float]]:
    """The recorded stamps of each event key (`source:event_id`); events never traced are left out."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(PREFIX + key)
    out: dict[str, dict[str, float]] = {}
    for key, raw in zip(keys, pipe.execute(), strict=True):
        if raw:
            out[key] = {as_text(k): float(v) for k, v in raw.items()}
    return out
