"""The journal: a copy of every message we publish, kept until its work reaches a final state.

kombu's Redis transport can lose a message without a trace: BRPOP takes it off the queue and a second round
trip records it as unacknowledged, so a worker killed between the two (SIGKILL, the OOM killer), or a BRPOP
reply that dies with its connection (Redis restarted while a worker had one pending), leaves it in neither
place. So every producer writes what it publishes here first, and the worker settles the entry in the same
Redis step that records the final state (event done or a duplicate, delivery delivered, dead-lettered).
`worker.reconcile` re-publishes what stays unsettled for longer than any legitimate wait; a re-sent copy of
work that was in fact done is skipped by deduplication.

Layout: `aw:journal` is a sorted set of entry keys scored by when each is next due (its last publication or
retry plus the countdown it was sent with); `aw:journal:<kind>:<key>` holds the entry as JSON
(`{"kind", "args", "first", "sends"}`) with a TTL, so nothing outlives `ttl` even if never settled.
`aw:drained` keeps the recent times the queues were seen empty, and `aw:journal-missing` when each entry
whose message was in no queue and held by no worker was first seen so (see `worker.reconcile`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import redis

from worker.redis_values import as_text

PREFIX = "aw:"
INDEX = PREFIX + "journal"
DRAINED = PREFIX + "drained"
LOCK = PREFIX + "journal-sweep"
MISSING = PREFIX + "journal-missing"
KEEP_DRAINED = 1000  # observations kept; a sweep needs only the newest one older than the safe age

Kind = Literal["event", "delivery", "chunk"]
KINDS: tuple[Kind, ...] = ("event", "delivery", "chunk")


def entry_key(kind: str, key: str) -> str:
    """The Redis key of one entry (also its member in the index)."""
    return f"{PREFIX}journal:{kind}:{key}"


def event_key(source: str, event_id: str) -> str:
    return f"{source}:{event_id}"


def chunk_key(job_id: str, index: int) -> str:
    return f"{job_id}:{index}"


def key_of(kind: Kind, args: list[Any]) -> str | None:
    """The entry key of a task's message, from the arguments it was published with (as the producers key
    them: an event by source and id, a delivery by its id, a chunk by job and index); None if they name none."""
    try:
        if kind == "event":
            return event_key(str(args[0]["source"]), str(args[0]["event_id"]))
        if kind == "delivery":
            return str(args[0]["delivery_id"])
        return chunk_key(str(args[0]), int(args[1]))
    except (LookupError, TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One journalled message: what to publish again (`kind` names the task, `args` its arguments)."""

    redis_key: str
    kind: Kind
    args: list[Any]
    first: float  # when it was first journalled
    sends: int  # how often the reconciler has re-sent it
    due: float

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "args": self.args, "first": self.first, "sends": self.sends},
                          separators=(",", ":"), ensure_ascii=False)

    @property
    def key(self) -> str:
        return self.redis_key.removeprefix(f"{PREFIX}journal:{self.kind}:")


class Journal:
    """The journal's Redis operations; the final-state scripts in `worker.stores` settle entries themselves."""

    def __init__(self, client: redis.Redis, *, ttl: int = 7 * 86400,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.ttl = ttl
        self.clock = clock

    # -- producers -------------------------------------------------------------------------------------------
    def write(self, pipe: Any, kind: Kind, key: str, args: list[Any], due_in: float = 0.0) -> None:
        """Add one entry to `pipe` (a pipeline the caller executes, before it publishes)."""
        now = self.clock()
        k = entry_key(kind, key)
        pipe.set(k, Entry(k, kind, args, now, 0, now).to_json(), ex=self.ttl + int(due_in))
        pipe.zadd(INDEX, {k: now + due_in})

    def record(self, items: Iterable[tuple[Kind, str, list[Any]]], due_in: float = 0.0) -> None:
        """Journal (kind, key, args) items in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for kind, key, args in items:
            self.write(pipe, kind, key, args, due_in)
        if len(pipe):
            pipe.execute()

    # -- workers ---------------------------------------------------------------------------------------------
    def touch(self, kind: Kind, key: str, due_in: float) -> None:
        """Still in progress (a retry was scheduled `due_in` seconds out): not due before then."""
        self.redis.zadd(INDEX, {entry_key(kind, key): self.clock() + due_in}, xx=True)

    def settle(self, kind: Kind, key: str, pipe: Any = None) -> None:
        """Drop an entry whose work reached a final state (the stores' scripts do this in their own step)."""
        k = entry_key(kind, key)
        target = pipe if pipe is not None else self.redis.pipeline(transaction=True)
        target.zrem(INDEX, k)
        target.delete(k)
        if pipe is None:
            target.execute()

    # -- the reconciler --------------------------------------------------------------------------------------
    def due(self, before: float, limit: int, kinds: Iterable[Kind] = KINDS, scan: int | None = None) -> list[Entry]:
        """Entries of `kinds` due before `before`, oldest first, looked for among the first `scan` (default
        `limit`) due of any kind, a page at a time; index members whose entry expired are dropped."""
        prefixes = tuple(entry_key(kind, "") for kind in kinds)
        scan = scan or limit
        found: list[tuple[Any, float]] = []
        page = max(limit, 500)
        for start in range(0, scan, page):
            rows: list[tuple[Any, float]] = list(self.redis.zrangebyscore(  # type: ignore[arg-type]
                INDEX, "-inf", f"({before!r}", start=start, num=min(page, scan - start), withscores=True))
            found += [(k, score) for k, score in rows if as_text(k).startswith(prefixes)]
            if len(found) >= limit or len(rows) < page:
                break
        found = found[:limit]
        if not found:
            return []
        keys = [as_text(k) for k, _ in found]
        raws = self.redis.mget(keys)
        entries: list[Entry] = []
        gone: list[str] = []
        for k, (_, score), raw in zip(keys, found, raws, strict=True):
            if raw is None:
                gone.append(k)
                continue
            data = json.loads(raw)
            kind = data.get("kind")
            if kind not in KINDS:
                gone.append(k)
                continue
            entries.append(Entry(k, kind, list(data["args"]), float(data["first"]), int(data["sends"]),
                                 float(score)))
        if gone:
            self.redis.zrem(INDEX, *gone)
        return entries

    def resent(self, entry: Entry) -> Entry:
        """Count a re-send and make the entry due again one safe age from now (the caller publishes next)."""
        now = self.clock()
        again = Entry(entry.redis_key, entry.kind, entry.args, entry.first, entry.sends + 1, now)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(entry.redis_key, again.to_json(), ex=self.ttl, xx=True)
        pipe.zadd(INDEX, {entry.redis_key: now}, xx=True)
        kept, _ = pipe.execute()
        if not kept:  # settled meanwhile: nothing to send
            self.redis.zrem(INDEX, entry.redis_key)
            raise LookupError(entry.redis_key)
        return again

    def note_drained(self, at: float) -> None:
        """The queues were seen empty at `at`: everything published before it had been taken by a worker."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(DRAINED, {repr(at): at})
        pipe.zremrangebyrank(DRAINED, 0, -KEEP_DRAINED - 1)
        pipe.execute()

    def drained_before(self, at: float) -> float | None:
        """The newest time at or before `at` when the queues were seen empty."""
        found = self.redis.zrevrangebyscore(DRAINED, at, "-inf", start=0, num=1, withscores=True)
        return float(found[0][1]) if found else None

    def watch_missing(self, keys: Iterable[str], now: float, *, record: bool = True) -> dict[str, float]:
        """When each of `keys` (entries whose message was just found in no queue and held by no worker) was
        first found so, at this look and every look since. Keys missing from this look lose their watch:
        their message was seen, or not looked for. `record=False` reads without changing anything."""
        seen = {as_text(k): float(v) for k, v in self.redis.hgetall(MISSING).items()}
        since = {k: seen.get(k, now) for k in keys}
        if record:
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(MISSING)
            if since:
                pipe.hset(MISSING, mapping={k: repr(t) for k, t in since.items()})
            pipe.execute()
        return since

    def unwatch(self, keys: Iterable[str]) -> None:
        """End the watch of entries just published again: a re-sent message is watched afresh."""
        if gone := list(keys):
            self.redis.hdel(MISSING, *gone)

    def take_sweep(self, seconds: float) -> bool:
        """One sweep per interval over all workers: true for the caller that gets the slot."""
        return bool(self.redis.set(LOCK, "1", nx=True, px=max(1, int(seconds * 1000))))

    def size(self) -> int:
        return int(self.redis.zcard(INDEX))

    def oldest_due(self) -> float | None:
        found = self.redis.zrange(INDEX, 0, 0, withscores=True)
        return float(found[0][1]) if found else None
