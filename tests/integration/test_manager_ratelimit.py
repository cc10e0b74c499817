"""Per-keypair rate limit over the rolling 15-minute window (ID-10), in memory (lite) and in Redis
(a cluster), and the event bus over Redis delivering notifications to the addressed user only.

Redis: 127.0.0.1:6379 db 15; this module deletes only the keys it created."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

from tests.support.databases import throwaway_db
from tests.support.manager import start_manager
from workbay.common import signing
from workbay.common.ratelimit import MemoryRateLimiter, RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"
VERSION = "v7.20230615"
PASSWORD = "Us3r!pass"


async def _cleanup_rate_keys(h) -> None:
    """Delete the rate-limit counters of every keypair this manager's database holds."""
    if h.state.redis is None:
        return
    kps = await h.admin().get("/admin/keypairs", params={"limit": 1000})
    names = [f"workbay:rl:{k['access_key']}" for k in kps["items"]]
    if names:
        await h.state.redis.delete(*names)


@pytest.fixture(scope="module", params=["memory+sqlite", "redis+postgresql"])
async def limited(request, tmp_path_factory):
    """A manager with the in-memory limiter and bus (lite) or the Redis ones (a cluster)."""
    limiter, db = request.param.split("+")
    tmp = tmp_path_factory.mktemp("ratelimit")
    async with throwaway_db(db, tmp) as url:
        h = await start_manager(url, tmp, redis_url=REDIS_URL if limiter == "redis" else "")
        try:
            yield h
        finally:
            await _cleanup_rate_keys(h)
            await h.close()


async def new_user(h, **fields) -> dict[str, Any]:
    name = f"rl-{uuid.uuid4().hex[:10]}"
    return await h.admin().post("/admin/users", json={
        "email": f"{name}@example.test", "username": name, "password": PASSWORD, **fields})


async def call(h, method: str, path: str, ak: str | None = None, sk: str | None = None,
               **kw) -> httpx.Response:
    hdrs = {"X-BackendAI-Version": VERSION, "Content-Type": "text/plain"}
    if ak:
        hdrs.update(signing.sign_headers(ak, sk, method, path, "manager.test", "text/plain", VERSION))
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://manager.test") as c:
        return await c.request(method, path, headers=hdrs, **kw)


def limits(resp: httpx.Response) -> tuple[str, str, str]:
    return (resp.headers["X-RateLimit-Limit"], resp.headers["X-RateLimit-Remaining"],
            resp.headers["X-RateLimit-Window"])


# -- the limit through the API ------------------------------------------------------------------
async def test_rate_limit_per_keypair(limited):
    h = limited
    user = await new_user(h)
    ak, sk = user["keypair"]["access_key"], user["keypair"]["secret_key"]
    first = await call(h, "GET", "/user/me", ak, sk)
    assert first.status_code == 200 and limits(first) == ("10000", "9999", "900")
    await h.admin().patch(f"/admin/keypairs/{ak}", json={"rate_limit": 5})
    seen = []
    for _ in range(4):                                   # 1 request already counted
        resp = await call(h, "GET", "/auth/test", ak, sk)
        assert resp.status_code == 200
        seen.append(limits(resp))
    assert seen == [("5", "3", "900"), ("5", "2", "900"), ("5", "1", "900"), ("5", "0", "900")]
    refused = await call(h, "GET", "/auth/test", ak, sk)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://api.backend.ai/probs/rate-limit-exceeded"
    assert limits(refused) == ("5", "0", "900")
    assert 1 <= int(refused.headers["Retry-After"]) <= 900
    # refused again, on any endpoint; another keypair is not affected
    assert (await call(h, "GET", "/user/me", ak, sk)).status_code == 429
    other = await new_user(h)
    ok = await call(h, "GET", "/auth/test", other["keypair"]["access_key"], other["keypair"]["secret_key"])
    assert ok.status_code == 200 and limits(ok)[:2] == ("10000", "9999")
    # an admin raises the limit: the same window now leaves room
    await h.admin().patch(f"/admin/keypairs/{ak}", json={"rate_limit": 8})
    again = await call(h, "GET", "/auth/test", ak, sk)
    assert again.status_code == 200 and limits(again) == ("8", "2", "900")


async def test_every_response_carries_the_headers(limited):
    h = limited
    anon = await call(h, "GET", "/")
    assert limits(anon) == ("1000", "1000", "900")
    unauth = await call(h, "GET", "/user/me")
    assert unauth.status_code == 401 and limits(unauth) == ("1000", "1000", "900")
    bad_sig = await call(h, "GET", "/user/me", h.admin_access_key, "x" * 40)
    assert bad_sig.status_code == 401 and limits(bad_sig)[2] == "900"
    user = await new_user(h)
    ak, sk = user["keypair"]["access_key"], user["keypair"]["secret_key"]
    forbidden = await call(h, "GET", "/admin/users", ak, sk)
    assert forbidden.status_code == 403 and limits(forbidden) == ("10000", "9999", "900")
    missing = await call(h, "GET", "/admin/nothing-here", ak, sk)
    assert missing.status_code == 404 and limits(missing) == ("10000", "9998", "900")


async def test_counters_live_where_the_deployment_says(limited):
    h = limited
    user = await new_user(h)
    ak, sk = user["keypair"]["access_key"], user["keypair"]["secret_key"]
    await call(h, "GET", "/auth/test", ak, sk)
    if h.state.redis is None:
        assert isinstance(h.state.rate_limiter, MemoryRateLimiter)
    else:
        assert isinstance(h.state.rate_limiter, RedisRateLimiter)
        assert await h.state.redis.zcard(f"workbay:rl:{ak}") == 1
        assert 0 < await h.state.redis.ttl(f"workbay:rl:{ak}") <= 901


# -- the rolling window, memory and Redis alike ---------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@contextlib.asynccontextmanager
async def limiter_of(kind: str, clock: Clock):
    if kind == "memory":
        yield MemoryRateLimiter(clock=clock)
        return
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"workbay:test:{uuid.uuid4().hex}:"
    try:
        yield RedisRateLimiter(r, prefix=prefix, clock=clock)
    finally:
        found = [k async for k in r.scan_iter(match=prefix + "*")]
        if found:
            await r.delete(*found)
        await r.aclose()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_rolling_window(kind):
    clock = Clock()
    start = clock.t
    async with limiter_of(kind, clock) as rl:
        assert [(await rl.hit("k", 3)).remaining for _ in range(3)] == [2, 1, 0]
        refused = await rl.hit("k", 3)
        assert not refused.allowed and refused.remaining == 0 and refused.retry_after == 900
        clock.t = start + 300
        assert not (await rl.hit("k", 3)).allowed        # refusals are not counted
        clock.t = start + 899.5
        assert (await rl.hit("k", 3)).retry_after == 1
        clock.t = start + 900                              # the three hits age out together
        decision = await rl.hit("k", 3)
        assert decision.allowed and decision.remaining == 2
        assert (await rl.hit("other", 1)).allowed
        assert not (await rl.hit("other", 1)).allowed


async def test_redis_limit_holds_under_concurrency():
    clock = Clock()
    async with limiter_of("redis", clock) as rl:
        decisions = await asyncio.gather(*(rl.hit("burst", 5) for _ in range(40)))
        assert sum(d.allowed for d in decisions) == 5
        assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4]


# -- events over the bus, through /events/notifications ---------------------------------------------
@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()


async def sse_events(resp: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    name, data = None, []
    async for line in resp.aiter_lines():
        if line == "":
            if name or data:
                yield name or "message", json.loads("\n".join(data)) if data else None
            name, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


async def open_stream(client: httpx.AsyncClient, host: str, user: dict[str, Any]):
    ak, sk = user["keypair"]["access_key"], user["keypair"]["secret_key"]
    # SSE: no Content-Type header, the signature uses application/octet-stream
    hdrs = signing.sign_headers(ak, sk, "GET", "/events/notifications", host,
                                "application/octet-stream", VERSION)
    hdrs.pop("Content-Type")
    cm = client.stream("GET", f"http://{host}/events/notifications", headers=hdrs)
    resp = await cm.__aenter__()
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp)
    name, data = await asyncio.wait_for(anext(events), 10)
    assert (name, data) == ("hello", {"user": user["email"]})  # subscribed from here on
    return cm, events


async def next_named(events, marker: str, timeout: float = 10) -> list[dict[str, Any]]:
    """Every event up to and including the one whose data carries ``marker``."""
    seen = []
    async with asyncio.timeout(timeout):
        async for name, data in events:
            seen.append({"event": name, **(data or {})})
            if isinstance(data, dict) and data.get("marker") == marker:
                return seen
    raise AssertionError(f"stream ended before {marker}")


async def test_notifications_reach_the_addressed_user_only(limited, tmp_path):
    h = limited
    alice, bob = await new_user(h), await new_user(h)
    publisher = h.state.ctx.events
    replica = None
    if h.state.redis is not None:
        # a second manager replica on the same database and Redis: events cross replicas
        replica = await start_manager(str(h.state.engine.url.render_as_string(hide_password=False)),
                                      tmp_path, redis_url=REDIS_URL)
        publisher = replica.state.ctx.events
    try:
        async with serve(h.app) as host, httpx.AsyncClient(timeout=30) as client:
            a_cm, a_events = await open_stream(client, host, alice)
            b_cm, b_events = await open_stream(client, host, bob)
            try:
                to_alice, to_bob = uuid.uuid4().hex, uuid.uuid4().hex
                await publisher.publish({"name": "bgtask_done", "user_id": alice["uuid"],
                                         "marker": to_alice, "message": "for alice"})
                await publisher.publish({"name": "bgtask_failed", "user_id": bob["uuid"],
                                         "marker": to_bob, "message": "for bob"})
                a_seen = await next_named(a_events, to_alice)
                assert a_seen[-1] == {"event": "bgtask_done", "name": "bgtask_done",
                                      "user_id": alice["uuid"], "marker": to_alice,
                                      "message": "for alice"}
                b_seen = await next_named(b_events, to_bob)
                assert b_seen[-1]["event"] == "bgtask_failed" and b_seen[-1]["user_id"] == bob["uuid"]
                assert to_alice not in {e.get("marker") for e in b_seen}
                assert all(e.get("user_id") in (None, bob["uuid"]) for e in b_seen)
                # an event for everyone reaches both
                everyone = uuid.uuid4().hex
                await publisher.publish({"name": "announcement", "marker": everyone})
                assert (await next_named(a_events, everyone))[-1]["event"] == "announcement"
                assert (await next_named(b_events, everyone))[-1]["event"] == "announcement"
            finally:
                await a_events.aclose()
                await b_events.aclose()
                await a_cm.__aexit__(None, None, None)
                await b_cm.__aexit__(None, None, None)
    finally:
        if replica is not None:
            await replica.close()
