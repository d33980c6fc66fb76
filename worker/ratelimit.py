"""A token bucket per delivery target, shared by every worker through Redis.

Helpdesk APIs limit requests per account (Zendesk, Freshdesk), per webhook (Slack: about one message a
second) or per key (PagerDuty); the limit is the account's, not one worker's, so the bucket lives in Redis
and one Lua script refills and takes atomically. `take` answers how long to wait (0.0: send now); the
delivery task turns a wait into a retry countdown, and a 429's Retry-After is still honoured on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

PREFIX = "aw:bucket:"

# KEYS: bucket hash. ARGV: rate per second, burst, now in seconds ('' = the Redis server's clock).
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")


class TokenBuckets:
    """One bucket per target name; targets without a configured rate are never held back."""

    def __init__(self, client: redis.Redis, rates: dict[str, Rate]) -> None:
        self.rates = dict(rates)
        self._take = client.register_script(_TAKE)

    def take(self, target: str, now: float | None = None) -> float:
        """Seconds to wait before sending to `target` (0.0: a token was taken, send now)."""
        rate = self.rates.get(target)
        if rate is None:
            return 0.0
        wait = self._take(keys=[PREFIX + target], args=[rate.per_second, rate.burst, "" if now is None else now])
        return float(wait.decode() if isinstance(wait, bytes) else wait)
