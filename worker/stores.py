"""Redis-backed stores: deduplication, conversation memory, per-ticket order, deliveries, dead letters,
and the journal of published messages (`worker.journal`), settled in the same steps that record a final state.

Each step the pipeline takes is one Redis round trip (a Lua script or a pipeline), so a worker does a
handful of round trips per event however long the conversation. Everything here works on fakeredis
(with lupa for the scripts) in the unit tests.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import redis

from worker.journal import INDEX, Journal, Kind, entry_key, event_key
from worker.models import Message
from worker.redis_values import as_text

PREFIX = "aw:"
Claim = Literal["new", "done", "busy", "wait"]
DeliveryClaim = Literal["go", "delivered", "busy"]

# KEYS: done (or ''), lock, journal index, journal entry. ARGV: token, done ttl (0: do not mark).
# Marking done settles the journal entry in the same step.
_FINISH = """
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
  redis.call('ZREM', KEYS[3], KEYS[4])
  redis.call('DEL', KEYS[4])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

# Take an event in one round trip: deduplicate, lock, wait for order, remember, return the conversation.
# KEYS: done, lock, messages hash, order zset, pending zset, pending-since zset, journal index, journal entry.
# ARGV: token, lock ms, done ttl (> 0: mark done now, nothing left to do after remembering), max kept,
#       memory ttl, stale-before, wait-before ('' = no check), the event's message id, n,
#       due-at (when a retry after 'busy' or 'wait' will have run), then n x (id, score, json).
# Returns {'done'} | {'busy'} | {'wait', count} | {'new', json...} (the whole conversation, in time order).
# A lock already held under the same token is the caller's own (the same task, run again after a failure
# that left it: a Redis restart, a lost worker): taken back, not waited out.
# A duplicate, or an event marked done here, settles its journal entry; 'busy' and 'wait' push it back.
_TAKE = """
local token, lock_ms, done_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max, ttl, n = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[9])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZREM', KEYS[5], ARGV[8])
  redis.call('ZREM', KEYS[6], ARGV[8])
  redis.call('ZREM', KEYS[7], KEYS[8])
  redis.call('DEL', KEYS[8])
  return {'done'}
end
if not redis.call('SET', KEYS[2], token, 'NX', 'PX', lock_ms) then
  if redis.call('GET', KEYS[2]) ~= token then
    redis.call('ZADD', KEYS[7], 'XX', ARGV[10], KEYS[8])
    return {'busy'}
  end
  redis.call('PEXPIRE', KEYS[2], lock_ms)
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', ARGV[6])
if #stale > 0 then
  redis.call('ZREM', KEYS[5], unpack(stale))
  redis.call('ZREM', KEYS[6], unpack(stale))
end
if ARGV[7] ~= '' then
  local waiting = redis.call('ZCOUNT', KEYS[5], '-inf', '(' .. ARGV[7])
  if waiting > 0 then
    redis.call('DEL', KEYS[2])
    redis.call('ZADD', KEYS[7], 'XX', ARGV[10], KEYS[8])
    return {'wait', tostring(waiting)}
  end
end
for i = 0, n - 1 do
  local id = ARGV[11 + i * 3]
  redis.call('HSET', KEYS[3], id, ARGV[13 + i * 3])
  redis.call('ZADD', KEYS[4], ARGV[12 + i * 3], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
end
local extra = redis.call('ZCARD', KEYS[4]) - max
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[4], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, extra - 1)
  redis.call('HDEL', KEYS[3], unpack(old))
end
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('EXPIRE', KEYS[4], ttl)
if done_ttl > 0 then
  redis.call('SET', KEYS[1], '1', 'EX', done_ttl)
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[7], KEYS[8])
  redis.call('DEL', KEYS[8])
  return {'new'}
end
local out = {'new'}
local ids = redis.call('ZRANGE', KEYS[4], 0, -1)
if #ids > 0 then
  for _, body in ipairs(redis.call('HMGET', KEYS[3], unpack(ids))) do
    if body then out[#out + 1] = body end
  end
end
return out
"""

# KEYS: delivered, delivering, journal index, journal entry. ARGV: token, lock ms. A lock held under the same
# token is the caller's own, as for events.
_BEGIN_DELIVERY = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZREM', KEYS[3], KEYS[4])
  redis.call('DEL', KEYS[4])
  return 'delivered'
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'go' end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 'go'
end
return 'busy'
"""


@dataclass(frozen=True, slots=True)
class Taken:
    """What taking an event found: a duplicate, another worker on it, older messages still queued
    (`waiting`), or a new event now remembered, with the ticket's conversation when asked for."""

    status: Claim
    conversation: list[Message] = field(default_factory=list)
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    kind: str  # "event" | "delivery"
    reason: str
    created_at: float
    payload: Any
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "reason": self.reason, "created_at": self.created_at,
                "payload": self.payload, "details": self.details}


def timestamp(value: datetime | None, fallback: float) -> float:
    return value.timestamp() if value is not None else fallback


class Stores:
    """All the pipeline's Redis state behind one small interface."""

    def __init__(self, client: redis.Redis, *, memory_messages: int = 50, memory_ttl: int = 14 * 86400,
                 dedup_ttl: int = 7 * 86400, lock_seconds: int = 120, pending_stale: int = 600,
                 delivered_ttl: int = 30 * 86400, payload_max: int = 64 * 1024, journal_ttl: int = 7 * 86400,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.journal = Journal(client, ttl=journal_ttl, clock=clock)
        self.memory_messages = memory_messages
        self.memory_ttl = memory_ttl
        self.dedup_ttl = dedup_ttl
        self.lock_ms = lock_seconds * 1000
        self.pending_stale = pending_stale
        self.delivered_ttl = delivered_ttl
        self.payload_max = payload_max
        self.clock = clock
        self._take = client.register_script(_TAKE)
        self._finish = client.register_script(_FINISH)
        self._begin_delivery = client.register_script(_BEGIN_DELIVERY)

    # -- taking an event: deduplication, per-ticket order and conversation memory in one step --------------
    def take_event(self, source: str, event_id: str, ticket_id: str, messages: Sequence[Message], token: str,
                   *, wait_before: float | None = None, finish: bool = False,
                   default_time: float | None = None, retry_in: float = 0.0) -> Taken:
        """Deduplicate by (source, event_id) and remember the event's messages, in one round trip.

        'done': handled before (its pending entry is dropped). 'busy': another worker holds it. 'wait':
        with `wait_before`, a message of the ticket created before that time is still queued; nothing was
        remembered. 'new': remembered, the lock held until `finish_event`, and the ticket's conversation
        returned; with `finish=True` (nothing else to do for this event) marked done at once instead.
        The last message is the event's own. 'done', and 'new' with `finish`, settle the event's journal
        entry; 'busy' and 'wait' make it due only `retry_in` seconds from now, when the retry will have run.
        """
        now = self.clock()
        fallback = now if default_time is None else default_time
        args: list[Any] = [token, self.lock_ms, self.dedup_ttl if finish else 0, self.memory_messages,
                           self.memory_ttl, now - self.pending_stale,
                           "" if wait_before is None else repr(wait_before),
                           messages[-1].id if messages else "", len(messages), repr(now + retry_in)]
        for m in messages:
            args += [m.id, repr(timestamp(m.created_at, fallback)), m.model_dump_json()]
        keys = [_k("done", source, event_id), _k("lock", source, event_id), _k("conv", ticket_id),
                _k("order", ticket_id), _k("pending", ticket_id), _k("pending-since", ticket_id),
                INDEX, entry_key("event", event_key(source, event_id))]
        result = self._take(keys=keys, args=args)
        status = as_text(result[0])
        if status == "wait":
            return Taken("wait", waiting=int(result[1]))
        return Taken(status, [Message.model_validate_json(raw) for raw in result[1:]])  # type: ignore[arg-type]

    def finish_event(self, source: str, event_id: str, token: str, *, done: bool = True) -> None:
        """Mark the event handled (after its effects are enqueued), settle its journal entry, release its lock."""
        self._finish(keys=[_k("done", source, event_id), _k("lock", source, event_id), INDEX,
                           entry_key("event", event_key(source, event_id))],
                     args=[token, self.dedup_ttl if done else 0])

    # -- per-ticket order ------------------------------------------------------------------------------------
    def add_pending(self, items: Iterable[tuple[str, str, float]]) -> None:
        """Record queued messages (ticket id, message id, created_at) before they are enqueued."""
        self.accept(items, ())

    def accept(self, pending: Iterable[tuple[str, str, float]],
               journal: Iterable[tuple[Kind, str, list[Any]]]) -> None:
        """Before publishing, in one round trip: record the messages as pending for their tickets (ticket
        id, message id, created_at), and journal what will be published ((kind, key, task args))."""
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        for ticket_id, message_id, created in pending:
            pipe.zadd(_k("pending", ticket_id), {message_id: created})
            pipe.zadd(_k("pending-since", ticket_id), {message_id: now})
            pipe.expire(_k("pending", ticket_id), self.pending_stale * 2)
            pipe.expire(_k("pending-since", ticket_id), self.pending_stale * 2)
        for kind, key, args in journal:
            self.journal.write(pipe, kind, key, args)
        if len(pipe):
            pipe.execute()

    def pending(self, ticket_id: str) -> list[str]:
        return [as_text(m) for m in self.redis.zrange(_k("pending", ticket_id), 0, -1)]

    def conversation(self, ticket_id: str) -> list[Message]:
        """The ticket's remembered messages, in time order."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(_k("order", ticket_id), 0, -1)
        pipe.hgetall(_k("conv", ticket_id))
        order, bodies = pipe.execute()
        by_id = {as_text(k): v for k, v in bodies.items()}
        return [Message.model_validate_json(by_id[as_text(i)]) for i in order if as_text(i) in by_id]

    # -- deliveries: exactly once through their ids ----------------------------------------------------
    def begin_delivery(self, delivery_id: str, token: str) -> DeliveryClaim:
        """'go' (locked for the caller), 'busy' (another worker is sending it) or 'delivered' (settled)."""
        result = self._begin_delivery(keys=[_k("delivered", delivery_id), _k("delivering", delivery_id),
                                            INDEX, entry_key("delivery", delivery_id)],
                                      args=[token, self.lock_ms])
        return as_text(result)  # type: ignore[return-value]

    def finish_delivery(self, delivery_id: str, token: str, *, delivered: bool) -> None:
        """Release the lock; once delivered, record it and settle its journal entry in the same step."""
        self._finish(keys=[_k("delivered", delivery_id), _k("delivering", delivery_id), INDEX,
                           entry_key("delivery", delivery_id)],
                     args=[token, self.delivered_ttl if delivered else 0])

    def was_delivered(self, delivery_id: str) -> bool:
        return bool(self.redis.exists(_k("delivered", delivery_id)))

    # -- dead letters ---------------------------------------------------------------------------------------
    def add_dead_letter(self, kind: str, reason: str, payload: Any, *,
                        settles: tuple[Kind, str] | None = None, **details: Any) -> str:
        """Keep what could not be handled, with why; a raw payload is truncated to payload_max.

        `settles`: the journal entry (kind, key) this final state settles, in the same transaction.
        """
        now = self.clock()
        letter_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(4)
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="replace")
        if isinstance(payload, str) and len(payload) > self.payload_max:
            details["truncated_from"] = len(payload)
            payload = payload[: self.payload_max]
        letter = DeadLetter(letter_id, kind, reason, now, payload, details)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(_k("dead", letter_id), json.dumps(letter.to_dict(), default=str))
        pipe.zadd(_k("dead-letters"), {letter_id: now})
        if settles is not None:
            self.journal.settle(*settles, pipe=pipe)
        pipe.execute()
        return letter_id

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        ids = [as_text(i) for i in self.redis.zrevrange(_k("dead-letters"), 0, max(limit, 1) - 1)]
        if not ids:
            return []
        raws = self.redis.mget([_k("dead", i) for i in ids])
        return [_letter(raw) for raw in raws if raw is not None]

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        raw = self.redis.get(_k("dead", letter_id))
        return None if raw is None else _letter(raw)

    def remove_dead_letter(self, letter_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(_k("dead", letter_id))
        pipe.zrem(_k("dead-letters"), letter_id)
        removed, _ = pipe.execute()
        return bool(removed)

    def dead_letter_ids_before(self, cutoff: float | None = None) -> list[str]:
        """The ids of the dead letters kept before `cutoff` (epoch seconds; None: all), oldest first."""
        top = "+inf" if cutoff is None else f"({cutoff!r}"
        return [as_text(i) for i in self.redis.zrangebyscore(_k("dead-letters"), "-inf", top)]

    def dead_letter_count(self) -> int:
        return int(self.redis.zcard(_k("dead-letters")))


def new_token() -> str:
    return secrets.token_hex(8)


def _k(kind: str, *parts: str) -> str:
    return PREFIX + kind + ":" + ":".join(parts)


def _letter(raw: Any) -> DeadLetter:
    data = json.loads(raw)
    return DeadLetter(data["id"], data["kind"], data["reason"], data["created_at"], data["payload"],
                      data.get("details", {}))
