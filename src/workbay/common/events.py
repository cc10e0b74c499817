"""One event bus: in-process for lite, Redis pub/sub for a cluster.

Events are dicts with at least ``name``; ``user_id`` addresses one user, absent means everyone
allowed to see it (consumers filter).  ``subscribe()`` yields an asyncio.Queue of events, so a
consumer can wait with a timeout without breaking the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

CHANNEL = "workbay:events"
QUEUE_LIMIT = 1000

Event = dict[str, Any]


def _offer(q: asyncio.Queue[Event], event: Event) -> None:
    if q.qsize() < QUEUE_LIMIT:  # a stalled subscriber never blocks publishers
        q.put_nowait(event)


class MemoryEventBus:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()

    async def publish(self, event: Event) -> None:
        for q in list(self._queues):
            _offer(q, event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._queues.add(q)
        try:
            yield q
        finally:
            self._queues.discard(q)

    async def close(self) -> None:
        self._queues.clear()


def redis_channel(redis) -> str:
    """The events channel of one installation.  Pub/sub ignores Redis's database numbers, so the
    number of the database the installation uses is part of the name: two installations on one
    Redis server (each with its own database) never see each other's events."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANNEL}:{db}"


class RedisEventBus:
    def __init__(self, redis) -> None:
        self.redis = redis
        self.channel = redis_channel(redis)

    async def publish(self, event: Event) -> None:
        await self.redis.publish(self.channel, json.dumps(event, default=str))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        # Wait until Redis confirms the subscription: events published after subscribe() returns
        # are then guaranteed to reach this subscriber.
        while True:
            msg = await pubsub.get_message(timeout=5.0)
            if msg is None:
                await pubsub.aclose()
                raise ConnectionError("Redis did not confirm the event subscription")
            if msg.get("type") == "subscribe":
                break

        async def pump() -> None:
            async for msg in pubsub.listen():
                if msg.get("type") == "message":
                    _offer(q, json.loads(msg["data"]))

        task = asyncio.create_task(pump())
        try:
            yield q
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await pubsub.unsubscribe(self.channel)
            await pubsub.aclose()

    async def close(self) -> None:
        pass


EventBus = MemoryEventBus | RedisEventBus
