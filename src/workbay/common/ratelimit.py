"""Per-key request counting over a rolling window (Backend.AI: 900 s per access key)."""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 900


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> RateDecision: ...
    async def close(self) -> None: ...


class MemoryRateLimiter:
    """In-process counters for the embedded default (one process)."""

    def __init__(self, window: float = WINDOW_SECONDS, clock=time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    async def hit(self, key: str, limit: int) -> RateDecision:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return RateDecision(False, limit, 0)
        hits.append(now)
        return RateDecision(True, limit, limit - len(hits))

    async def close(self) -> None:
        self._hits.clear()


class RedisRateLimiter:
    """Counters shared by every manager replica: a sorted set of hit timestamps per key."""

    def __init__(self, redis, window: float = WINDOW_SECONDS, prefix: str = "workbay:rl:") -> None:
        self.redis = redis
        self.window = window
        self.prefix = prefix

    async def hit(self, key: str, limit: int) -> RateDecision:
        now = time.time()
        rkey = self.prefix + key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(rkey, 0, now - self.window)
            pipe.zcard(rkey)
            _, count = await pipe.execute()
        if count >= limit:
            return RateDecision(False, limit, 0)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(rkey, {f"{now}:{uuid.uuid4().hex[:8]}": now})
            pipe.expire(rkey, int(self.window) + 1)
            await pipe.execute()
        return RateDecision(True, limit, max(limit - count - 1, 0))

    async def close(self) -> None:
        pass
