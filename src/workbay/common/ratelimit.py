"""Per-key request counting over a rolling window (Backend.AI: 900 s per access key).

A request is allowed when fewer than ``limit`` allowed requests of the same key happened in the
last ``window`` seconds; refused requests are not counted, so a client that backs off gets its
quota back as its old requests age out of the window.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 900


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int = 0  # whole seconds until one more request would be allowed (when refused)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> RateDecision: ...
    async def close(self) -> None: ...


def _retry_after(oldest: float, now: float, window: float) -> int:
    return max(1, math.ceil(oldest + window - now))


class MemoryRateLimiter:
    """In-process counters for the embedded default (one process)."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    async def hit(self, key: str, limit: int) -> RateDecision:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return RateDecision(False, limit, 0, _retry_after(hits[0], now, self.window))
        hits.append(now)
        return RateDecision(True, limit, limit - len(hits))

    async def close(self) -> None:
        self._hits.clear()


# KEYS[1] = counter key; ARGV = now, window, limit, member.  One atomic step, so concurrent
# requests on several manager replicas can never let more than ``limit`` through.
_HIT_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, count, tostring(oldest[2] or now)}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('EXPIRE', key, math.ceil(window) + 1)
return {1, count + 1, '0'}
"""


class RedisRateLimiter:
    """Counters shared by every manager replica: a sorted set of hit timestamps per key."""

    def __init__(self, redis, window: float = WINDOW_SECONDS, prefix: str = "workbay:rl:",
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.window = window
        self.prefix = prefix
        self.clock = clock
        self._script = redis.register_script(_HIT_SCRIPT)

    async def hit(self, key: str, limit: int) -> RateDecision:
        now = self.clock()
        allowed, count, oldest = await self._script(
            keys=[self.prefix + key], args=[repr(now), repr(float(self.window)), limit,
                                            f"{now!r}:{uuid.uuid4().hex[:12]}"])
        if not int(allowed):
            return RateDecision(False, limit, 0, _retry_after(float(oldest), now, self.window))
        return RateDecision(True, limit, max(limit - int(count), 0))

    async def close(self) -> None:
        pass
