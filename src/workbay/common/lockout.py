"""Login lockout, the one rule for the webserver (ID-5) and the manager (issue 10, finding 8).

After ``attempts`` failures counted under one key (an account, a client address), every attempt
under that key is refused for ``seconds``, even with the right password.  Failures are forgotten
``seconds`` after the last one; a success resets the key.  In-process in the embedded default
(one process), in Redis in a cluster so that every replica sees the same counts.

``LoginThrottle`` applies the rule twice, per account and per client address; ``UsedSteps``
remembers the last TOTP time-step accepted per user, so a code is good for one login only."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Protocol

REDIS_PREFIX = "workbay:"


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
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, forget_at)
        self._locks: dict[str, float] = {}

    def _prune(self, now: float) -> None:
        for key in [a for a, (_, forget) in self._failures.items() if forget <= now]:
            del self._failures[key]
        for key in [a for a, until in self._locks.items() if until <= now]:
            del self._locks[key]

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
    def __init__(self, redis, attempts: int, seconds: int, prefix: str = REDIS_PREFIX + "web:login-") -> None:
        self.redis, self.attempts, self.seconds, self.prefix = redis, attempts, seconds, prefix

    def _keys(self, account: str) -> tuple[str, str]:
        return f"{self.prefix}failures:{account}", f"{self.prefix}lock:{account}"

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


def lockout_store(redis, attempts: int, seconds: int, prefix: str) -> LockoutStore:
    """Redis when the installation has one (a cluster), else in-process."""
    if redis is not None:
        return RedisLockout(redis, attempts, seconds, prefix=REDIS_PREFIX + prefix)
    return MemoryLockout(attempts, seconds)


class LoginThrottle:
    """Failed logins counted per account and per client address (two stores, one rule)."""

    def __init__(self, accounts: LockoutStore, clients: LockoutStore) -> None:
        self.accounts, self.clients = accounts, clients

    @classmethod
    def create(cls, redis, *, attempts: int, client_attempts: int, seconds: int,
               prefix: str = "auth:login-") -> LoginThrottle:
        return cls(lockout_store(redis, attempts, seconds, prefix + "account-"),
                   lockout_store(redis, client_attempts, seconds, prefix + "client-"))

    async def current_lock(self, account: str, client: str | None) -> Lock | None:
        return _latest(await self.accounts.current_lock(account_key(account)),
                       await self.clients.current_lock(client) if client else None)

    async def register_failure(self, account: str, client: str | None) -> Lock | None:
        return _latest(await self.accounts.register_failure(account_key(account)),
                       await self.clients.register_failure(client) if client else None)

    async def succeeded(self, account: str) -> None:
        # Only the account's count: a success of the attacker's own account must not wipe the
        # failures counted against the attacker's address.
        await self.accounts.reset(account_key(account))


# KEYS[1] = the user's key; ARGV = step, ttl.  Accept a step only if it is after the last one.
_CLAIM_STEP = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
local step = tonumber(ARGV[1])
if step <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


class UsedSteps:
    """The last TOTP time-step accepted per user: a code (and any earlier one) is used once.

    Codes are valid for a few steps only, so the record needs to outlive them by little
    (``ttl`` seconds); in-process or in Redis like the lockout."""

    def __init__(self, redis=None, ttl: int = 300, prefix: str = REDIS_PREFIX + "auth:totp-step:",
                 clock=time.monotonic) -> None:
        self.redis, self.ttl, self.prefix, self.clock = redis, ttl, prefix, clock
        self._last: dict[str, tuple[int, float]] = {}
        self._script = redis.register_script(_CLAIM_STEP) if redis is not None else None

    async def claim(self, user: str, step: int) -> bool:
        """True if ``step`` is after the last step accepted for ``user`` (and now recorded)."""
        if self._script is not None:
            return bool(int(await self._script(keys=[self.prefix + user], args=[step, self.ttl])))
        now = self.clock()
        for key in [k for k, (_, exp) in self._last.items() if exp <= now]:
            del self._last[key]
        last = self._last.get(user, (-1, 0.0))[0]
        if step <= last:
            return False
        self._last[user] = (step, now + self.ttl)
        return True


def lock_error(lock: Lock):
    """The 429 problem answer to a refused login (the webserver's and the manager's)."""
    from datetime import datetime

    from .errors import TooManyRequests

    seconds = lock.seconds_left()
    until = datetime.fromtimestamp(lock.until, UTC).replace(microsecond=0)
    minutes = max(1, round(seconds / 60))
    return TooManyRequests(
        f"Too many failed login attempts. Try again after {until.isoformat()} "
        f"(in about {minutes} minute{'s' if minutes != 1 else ''}).",
        title="Too many failed login attempts.",
        data={"retry_after": seconds, "locked_until": until.isoformat()},
        headers={"Retry-After": str(seconds)})


def _latest(*locks: Lock | None) -> Lock | None:
    """The lock that lasts longest of those held, or None."""
    found = [lock for lock in locks if lock is not None]
    return max(found, key=lambda lock: lock.until) if found else None
