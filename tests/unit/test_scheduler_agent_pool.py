"""The agent RPC's client pool: one HTTP client per agent address, reused by every call, closed once."""

from __future__ import annotations

import httpx

from workbay.agent.client import SECRET_HEADER
from workbay.manager.compute.agent_rpc import AgentClientPool


async def test_one_pooled_http_client_per_agent_address() -> None:
    seen: list[tuple[str, str | None, float | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        seen.append((str(request.url), request.headers.get(SECRET_HEADER), timeout))
        return httpx.Response(200, json={"status": "ok"})

    pool = AgentClientPool("s3cret", transport=httpx.MockTransport(answer))
    async with pool.client("http://a.test:6001/", timeout=3) as a1:
        await a1.health()
    async with pool.client("http://a.test:6001", timeout=120) as a2:
        await a2.health()
        assert a2.http is a1.http and not a1.http.is_closed  # closing a borrower keeps the pool's client
    async with pool.client("http://b.test:6001") as b:
        await b.health()
        assert b.http is not a1.http
    assert len(pool) == 2
    # The secret on every call, and each borrower's own timeout.
    assert seen == [("http://a.test:6001/healthz", "s3cret", 3), ("http://a.test:6001/healthz", "s3cret", 120),
                    ("http://b.test:6001/healthz", "s3cret", 30)]
    shared = a1.http
    await pool.close()
    assert shared.is_closed and len(pool) == 0
    async with pool.client("http://a.test:6001") as again:  # a pool used after close opens a fresh client
        assert again.http is not shared and not again.http.is_closed
    await pool.close()
