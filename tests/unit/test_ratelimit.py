"""The in-memory rate limiter: a rolling window per key, with an injected clock."""

from __future__ import annotations

import pytest

from workbay.common.ratelimit import WINDOW_SECONDS, MemoryRateLimiter, RateDecision


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


async def test_window_is_fifteen_minutes():
    assert WINDOW_SECONDS == 900
    assert MemoryRateLimiter().window == 900


async def test_counts_down_then_refuses(clock):
    rl = MemoryRateLimiter(clock=clock)
    decisions = [await rl.hit("k", 3) for _ in range(3)]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.allowed and d.limit == 3 for d in decisions)
    refused = await rl.hit("k", 3)
    assert refused == RateDecision(False, 3, 0, 900)


async def test_the_window_rolls(clock):
    rl = MemoryRateLimiter(clock=clock)
    start = clock.t
    await rl.hit("k", 2)                       # t0
    clock.t = start + 600
    await rl.hit("k", 2)                       # t0 + 600
    clock.t = start + 899.5
    refused = await rl.hit("k", 2)
    assert not refused.allowed and refused.retry_after == 1
    clock.t = start + 900                       # the first hit ages out exactly at 900 s
    d = await rl.hit("k", 2)
    assert d.allowed and d.remaining == 0
    clock.t = start + 1499
    assert not (await rl.hit("k", 2)).allowed    # the hit at +600 still counts
    assert (await rl.hit("k", 2)).retry_after == 1
    clock.t = start + 1500
    assert (await rl.hit("k", 2)).allowed


async def test_refused_requests_are_not_counted(clock):
    rl = MemoryRateLimiter(clock=clock)
    start = clock.t
    await rl.hit("k", 1)
    for i in range(9):                        # up to +800 s
        clock.t = start + 100 * i
        assert not (await rl.hit("k", 1)).allowed
    clock.t = start + 900
    assert (await rl.hit("k", 1)).allowed


async def test_keys_are_independent_and_the_limit_is_read_each_time(clock):
    rl = MemoryRateLimiter(clock=clock)
    assert (await rl.hit("a", 1)).allowed
    assert not (await rl.hit("a", 1)).allowed
    assert (await rl.hit("b", 1)).allowed
    # an admin raised the keypair's limit: the same history now leaves room
    d = await rl.hit("a", 5)
    assert d.allowed and d.remaining == 3


async def test_custom_window_and_close(clock):
    rl = MemoryRateLimiter(window=10, clock=clock)
    await rl.hit("k", 1)
    clock.t += 10
    assert (await rl.hit("k", 1)).allowed
    await rl.close()
    assert (await rl.hit("k", 1)).allowed      # counters are gone
