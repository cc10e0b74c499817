"""Login lockout (ID-5): after ``attempts`` failed logins of one account, every login of that
account is refused for ``seconds``, even with the right password.  A success resets the count."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from .sessions import REDIS_PREFIX


@dataclass(frozen=True)
class Lock:
    until: float  # wall-clock seconds since the epoch

    def seconds_left(self, now: float | None = None) -> int:
        return max(1, math.ceil(self.until - (now if now is not None else time.time())))


class LockoutStore(Protocol):
    async def current_lock(self, account: str) -> Lock | None: ...
    async def register_failure(self, account: str) -> Lock | None: ...
    async def reset(self, account: str) -> None: ...


def account_key(username: str) -> str:
    return username.strip().lower()


class MemoryLockout:
    def __init__(self, attempts: int, seconds: int, clock=time.time) -> None:
        self.attempts, self.seconds, self.clock = attempts, seconds, clock
        self._failures: dict[str, tuple[int, float]] = {}  # account -> (count, forget_at)
        self._locks: dict[str, float] = {}

    def _prune(self, now: float) -> None:
        for account in [a for a, (_, forget) in self._failures.items() if forget <= now]:
            del self._failures[account]
        for account in [a for a, until in self._locks.items() if until <= now]:
            del self._locks[account]

    async def current_lock(self, account: str) -> Lock | None:
        now = self.clock()
        self._prune(now)
        until = self._locks.get(account)
        return Lock(until) if until else None

    async def register_failure(self, account: str) -> Lock | None:
        now = self.clock()
        self._prune(now)
        count = self._failures.get(account, (0, 0.0))[0] + 1
        if count >= self.attempts:
            self._failures.pop(account, None)
            self._locks[account] = now + self.seconds
            return Lock(now + self.seconds)
        # failures are forgotten ``seconds`` after the last one
        self._failures[account] = (count, now + self.seconds)
        return None

    async def reset(self, account: str) -> None:
        self._failures.pop(account, None)
        self._locks.pop(account, None)


class RedisLockout:
    def __init__(self, redis, attempts: int, seconds: int) -> None:
        self.redis, self.attempts, self.seconds = redis, attempts, seconds

    @staticmethod
    def _keys(account: str) -> tuple[str, str]:
        return f"{REDIS_PREFIX}login-failures:{account}", f"{REDIS_PREFIX}login-lock:{account}"

    async def current_lock(self, account: str) -> Lock | None:
        until = await self.redis.get(self._keys(account)[1])
        return Lock(float(until)) if until else None

    async def register_failure(self, account: str) -> Lock | None:
        failures, lock = self._keys(account)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures)
            pipe.expire(failures, self.seconds)
            count, _ = await pipe.execute()
        if int(count) < self.attempts:
            return None
        until = time.time() + self.seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(lock, repr(until), ex=self.seconds)
            pipe.delete(failures)
            await pipe.execute()
        return Lock(until)

    async def reset(self, account: str) -> None:
        await self.redis.delete(*self._keys(account))
