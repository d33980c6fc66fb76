"""Redis-backed stores: deduplication, conversation memory, per-ticket order, deliveries, dead letters.

Each step the pipeline takes is one Redis round trip (a Lua script or a pipeline), so a worker does a
handful of round trips per event however long the conversation. Everything here works on fakeredis
(with lupa for the scripts) in the unit tests.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import redis

from worker.models import Message

PREFIX = "aw:"
Claim = Literal["new", "done", "busy"]
DeliveryClaim = Literal["go", "delivered", "busy"]

# KEYS: done, lock. ARGV: token, lock ms.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'done' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'new' end
return 'busy'
"""

# KEYS: done (or ''), lock. ARGV: token, done ttl (0: do not mark).
_FINISH = """
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], '1', 'EX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: messages hash, order zset, pending zset, pending-since zset.
# ARGV: max kept, ttl, stale-before, wait-before ('' = no check), n, then n x (id, score, json).
# Returns {'wait', count} when an older message of the ticket is still queued, else {'ok', json...}
# with the ticket's whole remembered conversation in time order.
_REMEMBER = """
local max, ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[3])
if #stale > 0 then
  redis.call('ZREM', KEYS[3], unpack(stale))
  redis.call('ZREM', KEYS[4], unpack(stale))
end
if ARGV[4] ~= '' then
  local waiting = redis.call('ZCOUNT', KEYS[3], '-inf', '(' .. ARGV[4])
  if waiting > 0 then return {'wait', tostring(waiting)} end
end
for i = 0, n - 1 do
  local id = ARGV[6 + i * 3]
  redis.call('HSET', KEYS[1], id, ARGV[8 + i * 3])
  redis.call('ZADD', KEYS[2], ARGV[7 + i * 3], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
end
local extra = redis.call('ZCARD', KEYS[2]) - max
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {'ok'}
if #ids > 0 then
  for _, body in ipairs(redis.call('HMGET', KEYS[1], unpack(ids))) do
    if body then out[#out + 1] = body end
  end
end
return out
"""

# KEYS: delivered, delivering. ARGV: token, lock ms.
_BEGIN_DELIVERY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'delivered' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'go' end
return 'busy'
"""


@dataclass(frozen=True, slots=True)
class Remembered:
    """The outcome of remembering a message: the conversation, or how many older messages to wait for."""

    conversation: list[Message]
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
                 delivered_ttl: int = 30 * 86400, payload_max: int = 64 * 1024,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.memory_messages = memory_messages
        self.memory_ttl = memory_ttl
        self.dedup_ttl = dedup_ttl
        self.lock_ms = lock_seconds * 1000
        self.pending_stale = pending_stale
        self.delivered_ttl = delivered_ttl
        self.payload_max = payload_max
        self.clock = clock
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._remember = client.register_script(_REMEMBER)
        self._begin_delivery = client.register_script(_BEGIN_DELIVERY)

    # -- deduplication by (source, event_id) ------------------------------------------------------------
    def claim_event(self, source: str, event_id: str, token: str) -> Claim:
        """'new' with a short lock held, 'done' when already handled, 'busy' when another worker has it."""
        result = self._claim(keys=[_k("done", source, event_id), _k("lock", source, event_id)],
                             args=[token, self.lock_ms])
        return _text(result)  # type: ignore[return-value]

    def finish_event(self, source: str, event_id: str, token: str, *, done: bool = True) -> None:
        """Mark the event handled (after its effects are enqueued) and release its lock."""
        self._finish(keys=[_k("done", source, event_id), _k("lock", source, event_id)],
                     args=[token, self.dedup_ttl if done else 0])

    # -- per-ticket order ------------------------------------------------------------------------------------
    def add_pending(self, items: Iterable[tuple[str, str, float]]) -> None:
        """Record queued messages (ticket id, message id, created_at) before they are enqueued."""
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        for ticket_id, message_id, created in items:
            pipe.zadd(_k("pending", ticket_id), {message_id: created})
            pipe.zadd(_k("pending-since", ticket_id), {message_id: now})
            pipe.expire(_k("pending", ticket_id), self.pending_stale * 2)
            pipe.expire(_k("pending-since", ticket_id), self.pending_stale * 2)
        pipe.execute()

    def drop_pending(self, ticket_id: str, message_ids: Sequence[str]) -> None:
        if message_ids:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrem(_k("pending", ticket_id), *message_ids)
            pipe.zrem(_k("pending-since", ticket_id), *message_ids)
            pipe.execute()

    def pending(self, ticket_id: str) -> list[str]:
        return [_text(m) for m in self.redis.zrange(_k("pending", ticket_id), 0, -1)]

    # -- conversation memory --------------------------------------------------------------------------------
    def remember(self, ticket_id: str, messages: Sequence[Message], *, wait_before: float | None = None,
                 default_time: float | None = None) -> Remembered:
        """Remember messages (idempotent by id) and return the ticket's conversation in time order.

        With `wait_before`, nothing is remembered while a message of the ticket created before that
        time is still queued; the count of those is returned instead.
        """
        fallback = self.clock() if default_time is None else default_time
        args: list[Any] = [self.memory_messages, self.memory_ttl, self.clock() - self.pending_stale,
                           "" if wait_before is None else repr(wait_before), len(messages)]
        for m in messages:
            args += [m.id, repr(timestamp(m.created_at, fallback)), m.model_dump_json()]
        keys = [_k("conv", ticket_id), _k("order", ticket_id), _k("pending", ticket_id),
                _k("pending-since", ticket_id)]
        result = self._remember(keys=keys, args=args)
        if _text(result[0]) == "wait":
            return Remembered([], waiting=int(result[1]))
        return Remembered([Message.model_validate_json(raw) for raw in result[1:]])

    def conversation(self, ticket_id: str) -> list[Message]:
        return self.remember(ticket_id, []).conversation

    # -- deliveries: exactly once through their ids ----------------------------------------------------
    def begin_delivery(self, delivery_id: str, token: str) -> DeliveryClaim:
        result = self._begin_delivery(keys=[_k("delivered", delivery_id), _k("delivering", delivery_id)],
                                      args=[token, self.lock_ms])
        return _text(result)  # type: ignore[return-value]

    def finish_delivery(self, delivery_id: str, token: str, *, delivered: bool) -> None:
        self._finish(keys=[_k("delivered", delivery_id), _k("delivering", delivery_id)],
                     args=[token, self.delivered_ttl if delivered else 0])

    def was_delivered(self, delivery_id: str) -> bool:
        return bool(self.redis.exists(_k("delivered", delivery_id)))

    # -- dead letters ---------------------------------------------------------------------------------------
    def add_dead_letter(self, kind: str, reason: str, payload: Any, **details: Any) -> str:
        """Keep what could not be handled, with why; a raw payload is truncated to payload_max."""
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
        pipe.execute()
        return letter_id

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        ids = [_text(i) for i in self.redis.zrevrange(_k("dead-letters"), 0, max(limit, 1) - 1)]
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

    def dead_letter_count(self) -> int:
        return int(self.redis.zcard(_k("dead-letters")))


def new_token() -> str:
    return secrets.token_hex(8)


def _k(kind: str, *parts: str) -> str:
    return PREFIX + kind + ":" + ":".join(parts)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _letter(raw: Any) -> DeadLetter:
    data = json.loads(raw)
    return DeadLetter(data["id"], data["kind"], data["reason"], data["created_at"], data["payload"],
                      data.get("details", {}))
