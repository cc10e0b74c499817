"""The Redis event bus on the real Redis at 127.0.0.1:6379: an installation receives its own
events, and two installations on one Redis server (databases 13 and 14) never see each other's."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from workbay.common.events import RedisEventBus


async def _next(q: asyncio.Queue, timeout: float = 5.0):
    return await asyncio.wait_for(q.get(), timeout)


async def test_installations_on_one_redis_keep_their_events_apart():
    first = aioredis.from_url("redis://127.0.0.1:6379/13", decode_responses=True)
    second = aioredis.from_url("redis://127.0.0.1:6379/14", decode_responses=True)
    mine, theirs = RedisEventBus(first), RedisEventBus(second)
    assert mine.channel != theirs.channel
    try:
        async with mine.subscribe() as q_mine, theirs.subscribe() as q_theirs:
            marker = uuid.uuid4().hex
            await mine.publish({"name": "session_started", "marker": marker})
            assert (await _next(q_mine))["marker"] == marker
            await theirs.publish({"name": "session_started", "marker": "theirs"})
            assert (await _next(q_theirs))["marker"] == "theirs"
            # neither saw the other's event
            await asyncio.sleep(0.2)
            assert q_mine.empty() and q_theirs.empty()
    finally:
        await first.aclose()
        await second.aclose()
