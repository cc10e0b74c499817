"""The app-proxy's inference listener (appproxy/inference.py) without containers: the app-proxy app as
``workbay app-proxy`` serves it (uvicorn, lifespan on), local ``tests/support/model_server.py``
processes as replicas, each behind the runner's real app gate (runner/gate.py, in-process) with a
secret of its own, and the control API the manager uses (PUT/DELETE/GET /v1/services)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from workbay.appproxy.inference import InferenceProxy
from workbay.appproxy.tokens import issue_service_token
from workbay.common.config import load_config
from workbay.lite import _apps, _Server
from workbay.runner.gate import Gate

SECRET = "inference-test-secret-of-32-bytes-or-more"
SERVER = Path(__file__).resolve().parent.parent / "support" / "model_server.py"
HEADERS = {"X-Workbay-Secret": SECRET}


class Replica:
    """A model_server.py process and the app gate in front of it."""

    def __init__(self, name: str, token_delay: float = 0.05) -> None:
        self.name = name
        self.port = free_port()
        self.secret = f"gate-secret-{name}"
        env = {**os.environ, "MODEL_REPLICA_NAME": name, "MODEL_TOKEN_DELAY": str(token_delay)}
        self.proc = subprocess.Popen([sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=env)
        self.gate: Gate | None = None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"model server {self.name} did not start")

    async def open_gate(self) -> None:
        self.gate = Gate(free_port(), self.port, self.secret)
        await self.gate.start("127.0.0.1")

    def route(self, ratio: float = 1.0) -> dict:
        assert self.gate is not None
        return {"route_id": self.name, "host": "127.0.0.1", "port": self.gate.gate_port,
                "app_secret": self.secret, "traffic_ratio": ratio}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def servers() -> Iterator[list[Replica]]:
    replicas = [Replica(f"r{i}") for i in range(3)]
    try:
        for r in replicas:
            r.wait_ready()
        yield replicas
    finally:
        for r in replicas:
            r.kill()


class Proxy:
    def __init__(self, api: httpx.AsyncClient, endpoint: httpx.AsyncClient, gates: list[Replica],
                 inference: InferenceProxy, port: int) -> None:
        self.api, self.endpoint, self.replicas = api, endpoint, gates
        self.inference, self.port = inference, port

    async def put(self, service_id: str, name: str, routes: list[dict], **extra) -> httpx.Response:
        return await self.api.put(f"/v1/services/{service_id}", headers=HEADERS,
                                  json={"name": name, "routes": routes, **extra})

    async def figures(self) -> dict:
        resp = await self.api.get("/v1/services", headers=HEADERS)
        assert resp.status_code == 200
        return resp.json()["services"]


@pytest.fixture
async def proxy(tmp_path, servers: list[Replica]) -> AsyncIterator[Proxy]:
    config = load_config(None, data_dir=tmp_path, secrets={"appproxy": SECRET},
                         appproxy={"port": free_port(), "inference_port": free_port()})
    [(_, app, host, port)] = _apps(config, "app-proxy", demo=False)  # what `workbay app-proxy` serves
    server = _Server(__import__("uvicorn").Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the app-proxy did not start"
        await asyncio.sleep(0.02)
    for r in servers:
        await r.open_gate()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.appproxy.inference_port}", timeout=20) as ep:
        try:
            yield Proxy(api, ep, servers, app.state.inference, config.appproxy.inference_port)
        finally:
            for r in servers:
                if r.gate is not None:
                    r.gate.close()
            server.should_exit = True
            await task


async def replica_of(client: httpx.AsyncClient, path: str = "/svc/echo", **kw) -> str:
    resp = await client.get(path, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()["replica"]


# -- the control API --------------------------------------------------------------------------------
async def test_control_api_needs_the_secret_and_validates(proxy: Proxy) -> None:
    resp = await proxy.api.put("/v1/services/s1", json={"name": "svc", "routes": []})
    assert resp.status_code == 401
    resp = await proxy.api.get("/v1/services", headers={"X-Workbay-Secret": "wrong"})
    assert resp.status_code == 401
    resp = await proxy.put("s1", "bad/name", [])
    assert resp.status_code == 400 and "name" in resp.text
    resp = await proxy.put("s1", "svc", [{"route_id": "r", "host": "h", "port": 0}])
    assert resp.status_code == 400 and "port" in resp.text
    resp = await proxy.put("s1", "svc", [proxy.replicas[0].route(ratio=101)])
    assert resp.status_code == 400 and "traffic_ratio" in resp.text
    assert await proxy.figures() == {}  # nothing changed

    resp = await proxy.put("s1", "svc", [proxy.replicas[0].route()])
    assert resp.status_code == 200 and resp.json() == {"url_path": "/svc/"}
    resp = await proxy.put("s2", "svc", [])
    assert resp.status_code == 400 and "name" in resp.text  # another service's name
    assert list(await proxy.figures()) == ["s1"]
    assert (await proxy.api.delete("/v1/services/s1", headers=HEADERS)).status_code == 204
    assert (await proxy.api.delete("/v1/services/s1", headers=HEADERS)).status_code == 404
    assert (await proxy.endpoint.get("/svc/echo")).status_code == 404


async def test_unknown_service_is_404_problem(proxy: Proxy) -> None:
    resp = await proxy.endpoint.get("/nope/v1/models")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert "nope" in resp.json()["msg"]


# -- balancing and what the replica sees ------------------------------------------------------------
async def test_requests_alternate_over_replicas_and_figures_count_them(proxy: Proxy) -> None:
    r0, r1, _ = proxy.replicas
    await proxy.put("s1", "svc", [r0.route(), r1.route()], open_to_public=True)
    seen = [await replica_of(proxy.endpoint) for _ in range(10)]
    assert Counter(seen) == {"r0": 5, "r1": 5}

    resp = await proxy.endpoint.post("/svc/echo?x=1", content=b"hello", headers={
        "Authorization": "Bearer whatever", "X-Forwarded-For": "6.6.6.6", "Host": "models.example"})
    got = resp.json()
    headers = {k.lower(): v for k, v in got["headers"]}
    assert (got["path"], got["query"], got["body_length"]) == ("/echo", "x=1", 5)  # the prefix is gone
    assert headers["host"] == f"127.0.0.1:{(r0 if got['replica'] == 'r0' else r1).gate.gate_port}"
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-forwarded-host"] == "models.example"
    assert headers["x-forwarded-proto"] == "http"
    assert "authorization" not in headers  # not even on a public service

    models = (await proxy.endpoint.get("/svc/v1/models")).json()
    assert models["data"][0]["id"] == "test-model"

    figures = (await proxy.figures())["s1"]
    assert figures["name"] == "svc" and figures["requests"] == 12 and figures["errors"] == 0
    assert figures["in_flight"] == 0 and figures["waiting"] == 0 and figures["rps"] > 0
    assert figures["p50_ms"] is not None and figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert figures["last_request_at"] > time.time() - 60
    assert {rid: f["requests"] for rid, f in figures["routes"].items()} == {"r0": 6, "r1": 6}


async def test_ratio_zero_gets_nothing(proxy: Proxy) -> None:
    r0, r1, r2 = proxy.replicas
    await proxy.put("s1", "svc", [r0.route(0), r1.route(1), r2.route(0)], open_to_public=True)
    assert {await replica_of(proxy.endpoint) for _ in range(12)} == {"r1"}


async def test_sse_reaches_the_client_token_by_token(proxy: Proxy) -> None:
    await proxy.put("s1", "svc", [proxy.replicas[0].route()], open_to_public=True)
    reads: list[bytes] = []
    body = {"model": "m", "stream": True, "max_tokens": 12, "messages": [{"role": "user", "content": "hi"}]}
    async with proxy.endpoint.stream("POST", "/svc/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
        async for chunk in resp.aiter_raw():
            reads.append(chunk)
    assert b"[DONE]" not in reads[0] and b'"content": "the"' in reads[0]  # the first token came alone
    assert len(reads) >= 6  # 12 tokens 50 ms apart arrive as they are produced, not in one piece
    events = [e for e in b"".join(reads).decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and len(events) == 13
    assert json.loads(events[1][len("data: "):])["choices"][0]["delta"]["content"] == " quick"


# -- tokens -----------------------------------------------------------------------------------------
async def test_tokens_of_non_public_services(proxy: Proxy) -> None:
    await proxy.put("s1", "svc", [proxy.replicas[0].route()], revoked=["t-revoked"])
    await proxy.put("s2", "other", [proxy.replicas[1].route()], open_to_public=True)
    later = time.time() + 3600
    good = issue_service_token(SECRET, "s1", "t-good", later)
    cases = {
        "needs a token": {},
        "must be 'BackendAI <token>'": {"Authorization": "Basic abc"},
        "expired": {"Authorization": "Bearer " + issue_service_token(SECRET, "s1", "t-old", time.time() - 5)},
        "revoked": {"Authorization": "BackendAI " + issue_service_token(SECRET, "s1", "t-revoked", later)},
        "not a token of this service": {"Authorization": "Bearer " + issue_service_token(SECRET, "s2", "t", later)},
        "not a token of this service ": {"Authorization": "Bearer " + issue_service_token("other-secret-xx", "s1",
                                                                                         "t", later)},
    }
    for why, headers in cases.items():
        resp = await proxy.endpoint.get("/svc/echo", headers=headers)
        assert resp.status_code == 401, why
        assert why.strip() in resp.json()["msg"], (why, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    for scheme in ("Bearer", "BackendAI"):
        resp = await proxy.endpoint.get("/svc/echo", headers={"Authorization": f"{scheme} {good}"})
        assert resp.status_code == 200
        assert "authorization" not in {k.lower() for k, _ in resp.json()["headers"]}  # never reaches the replica
    # revoking a token already used (and remembered) takes effect at the next PUT
    await proxy.put("s1", "svc", [proxy.replicas[0].route()], revoked=["t-revoked", "t-good"])
    resp = await proxy.endpoint.get("/svc/echo", headers={"Authorization": f"Bearer {good}"})
    assert resp.status_code == 401 and "revoked" in resp.json()["msg"]
    assert (await proxy.endpoint.get("/other/echo")).status_code == 200  # public: no token
    assert (await proxy.figures())["s1"]["requests"] == 2  # refused requests are not the service's load


# -- no routes, wake --------------------------------------------------------------------------------
async def test_no_routes_is_503_unless_waking(proxy: Proxy) -> None:
    await proxy.put("s1", "svc", [], open_to_public=True)
    resp = await proxy.endpoint.get("/svc/echo")
    assert resp.status_code == 503 and "no healthy replica" in resp.json()["msg"]

    await proxy.put("s1", "svc", [], open_to_public=True, wake=True, wake_timeout=0.3)
    resp = await proxy.endpoint.get("/svc/echo")
    assert resp.status_code == 503 and "starting" in resp.json()["msg"] and resp.headers["retry-after"]

    await proxy.put("s1", "svc", [], open_to_public=True, wake=True, wake_timeout=30)
    held = asyncio.create_task(proxy.endpoint.post("/svc/echo", content=b"x" * 1000))
    for _ in range(500):
        if (await proxy.figures())["s1"]["waiting"] == 1:
            break
        await asyncio.sleep(0.02)
    assert (await proxy.figures())["s1"]["waiting"] == 1 and not held.done()
    await proxy.put("s1", "svc", [proxy.replicas[2].route()], open_to_public=True, wake=False)
    resp = await held
    assert resp.status_code == 200 and resp.json()["replica"] == "r2" and resp.json()["body_length"] == 1000
    assert (await proxy.figures())["s1"]["waiting"] == 0


# -- updates and failures ---------------------------------------------------------------------------
async def test_a_removed_route_finishes_its_requests(proxy: Proxy) -> None:
    r0, r1, _ = proxy.replicas
    await proxy.put("s1", "svc", [r0.route()], open_to_public=True)
    slow = asyncio.create_task(proxy.endpoint.get("/svc/slow?ms=800"))
    for _ in range(500):
        if (await proxy.figures())["s1"]["in_flight"] == 1:
            break
        await asyncio.sleep(0.02)
    await proxy.put("s1", "svc", [r1.route()], open_to_public=True)
    assert await replica_of(proxy.endpoint) == "r1"
    resp = await slow
    assert resp.status_code == 200 and resp.json()["replica"] == "r0"
    assert list((await proxy.figures())["s1"]["routes"]) == ["r1"]


async def test_unreachable_replica_is_retried_elsewhere(proxy: Proxy) -> None:
    dead = {"route_id": "dead", "host": "127.0.0.1", "port": free_port(), "traffic_ratio": 1}
    await proxy.put("s1", "svc", [dead, proxy.replicas[0].route()], open_to_public=True)
    assert {await replica_of(proxy.endpoint) for _ in range(6)} == {"r0"}
    figures = (await proxy.figures())["s1"]
    assert figures["errors"] == 0 and figures["retries"] >= 1 and figures["routes"]["dead"]["errors"] >= 1

    # A body over 1 MiB is not kept for a retry: a replica that takes 1.5 MiB of it and then hangs
    # up (listed first, so it gets the first request) makes it a 502; the next request goes on.
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = 0
        while got < 1536 * 1024 and (data := await reader.read(65536)):
            got += len(data)
        writer.close()

    hole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        black = {"route_id": "hole", "host": "127.0.0.1", "port": hole.sockets[0].getsockname()[1]}
        await proxy.put("s9", "big", [black, proxy.replicas[0].route()], open_to_public=True)
        resp = await proxy.endpoint.post("/big/echo", content=b"x" * (2 * 1024 * 1024))
        assert resp.status_code == 502 and "too large to retry" in resp.json()["msg"]
        resp = await proxy.endpoint.post("/big/echo", content=b"x" * (2 * 1024 * 1024))
        assert resp.status_code == 200 and resp.json()["body_length"] == 2 * 1024 * 1024
        assert (await proxy.figures())["s9"]["errors"] == 1
    finally:
        hole.close()


async def test_a_route_that_leads_to_another_sessions_gate_is_retried_elsewhere(proxy: Proxy) -> None:
    """A dead replica's port handed to a new session before the routing table caught up: that gate
    refuses the old secret with its own 403, which the proxy takes for a failed replica, not an
    answer."""
    stale = {**proxy.replicas[1].route(), "route_id": "stale", "app_secret": "the-dead-sessions-secret"}
    await proxy.put("s10", "moved", [stale, proxy.replicas[0].route()], open_to_public=True)
    assert {await replica_of(proxy.endpoint, "/moved/echo") for _ in range(6)} == {"r0"}
    figures = (await proxy.figures())["s10"]
    assert figures["errors"] == 0 and figures["retries"] >= 1 and figures["routes"]["stale"]["errors"] >= 1


async def test_killing_a_replica_under_load_loses_no_request(proxy: Proxy) -> None:
    victim = Replica("victim")
    try:
        victim.wait_ready()
        await victim.open_gate()
        await proxy.put("s1", "svc", [victim.route(), proxy.replicas[0].route()], open_to_public=True)
        statuses: Counter[int] = Counter()
        replicas: Counter[str] = Counter()
        stop = asyncio.Event()

        async def client() -> None:
            while not stop.is_set():
                resp = await proxy.endpoint.post("/svc/echo", content=b"payload")
                statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    replicas[resp.json()["replica"]] += 1

        workers = [asyncio.create_task(client()) for _ in range(4)]
        while replicas["victim"] < 20:
            await asyncio.sleep(0.01)
        victim.kill()
        before = sum(statuses.values())
        while sum(statuses.values()) < before + 200:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*workers)
        assert statuses == {200: sum(statuses.values())}, statuses
        assert replicas["r0"] >= 200
        figures = (await proxy.figures())["s1"]
        assert figures["errors"] == 0 and figures["retries"] >= 1  # the victim kept failing: retried
        assert figures["routes"]["victim"]["errors"] >= 1
    finally:
        victim.kill()
        if victim.gate is not None:
            victim.gate.close()


# -- backpressure -----------------------------------------------------------------------------------
async def test_a_slow_client_does_not_make_the_proxy_buffer_the_response(proxy: Proxy) -> None:
    await proxy.put("s1", "svc", [proxy.replicas[0].route()], open_to_public=True)
    size = 256 * 1024 * 1024
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port, limit=64 * 1024)
    try:
        writer.write(f"GET /svc/bytes?n={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1.0)  # the client reads nothing for a while
        [conn] = list(proxy.inference.connections)
        assert conn.transport is not None
        assert conn.transport.get_write_buffer_size() < 16 * 1024 * 1024  # far less than 256 MiB
        total = 0
        while total < size:
            chunk = await asyncio.wait_for(reader.read(1024 * 1024), 30)
            assert chunk
            total += len(chunk)
        assert total == size
    finally:
        writer.close()


async def test_a_slow_replica_makes_the_upload_wait(proxy: Proxy) -> None:
    """A replica that stops reading the body: the proxy stops reading the client (no buffering)."""
    async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)
        writer.close()

    replica = await asyncio.start_server(stalled, "127.0.0.1", 0)
    sent = 0

    async def upload() -> None:
        nonlocal sent
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"POST /svc/upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (512 * 1024 * 1024))
        block = bytes(1024 * 1024)
        try:
            while True:
                writer.write(block)
                await writer.drain()  # waits once the proxy stops reading
                sent += len(block)
        finally:
            writer.close()

    try:
        port = replica.sockets[0].getsockname()[1]
        await proxy.put("s1", "svc", [{"route_id": "slow", "host": "127.0.0.1", "port": port}], open_to_public=True)
        task = asyncio.create_task(upload())
        await asyncio.sleep(1.5)
        assert not task.done()
        [conn] = list(proxy.inference.connections)
        assert conn.read_pauses  # the proxy stopped reading the client
        ex = conn.queue[0]
        assert ex.upstream is not None and ex.upstream.transport is not None
        assert ex.upstream.transport.get_write_buffer_size() < 16 * 1024 * 1024
        assert sent < 64 * 1024 * 1024  # of 512 MiB: the client waits too
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    finally:
        replica.close()


# -- one client connection, several requests --------------------------------------------------------
async def read_responses(reader: asyncio.StreamReader, count: int) -> list[tuple[int, bytes, bytes]]:
    """``count`` responses (Content-Length framed, or none for HEAD-like 2nd field): status, head, body."""
    out = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split(b" ", 2)[1])
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = b"" if b"x-head" in head else await reader.readexactly(length)
        out.append((status, head, body))
    return out


async def test_pipelined_and_mixed_requests_on_one_connection(proxy: Proxy) -> None:
    await proxy.put("s1", "svc", [proxy.replicas[0].route(), proxy.replicas[1].route()], open_to_public=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"GET /svc/slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"   # pipelined: answered in order
                     b"GET /svc/echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /nope/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"  # 404, body dropped
                     b"POST /svc/echo?n=4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n")
        got = await read_responses(reader, 4)
        assert [s for s, _, _ in got] == [200, 200, 404, 200]
        assert json.loads(got[0][2])["slept_ms"] == 200
        assert json.loads(got[1][2])["query"] == "n=2"
        assert json.loads(got[3][2])["query"] == "n=4" and json.loads(got[3][2])["body_length"] == 3

        writer.write(b"HEAD /svc/echo HTTP/1.1\r\nHost: x\r\nX-Head: 1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        writer.write(b"GET /svc/echo?last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        [(status, _, body)] = await read_responses(reader, 1)
        assert status == 200 and json.loads(body)["query"] == "last"
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed after the response, as asked
    finally:
        writer.close()
    figures = (await proxy.figures())["s1"]
    assert figures["requests"] == 5 and figures["in_flight"] == 0


async def test_a_kept_alive_connection_closed_by_the_replica_is_retried_anew(proxy: Proxy) -> None:
    """A replica that drops an idle connection as the next request arrives on it (uvicorn's keep-alive
    timeout racing the request): the request goes again on a fresh connection, even with one route."""
    answered = 0

    async def once_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        await reader.readuntil(b"\r\n\r\n")
        answered += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%d" % (len(str(answered)), answered))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: dropped unanswered
        writer.close()

    replica = await asyncio.start_server(once_per_connection, "127.0.0.1", 0)
    try:
        port = replica.sockets[0].getsockname()[1]
        await proxy.put("s1", "svc", [{"route_id": "only", "host": "127.0.0.1", "port": port}], open_to_public=True)
        bodies = []
        for _ in range(3):
            resp = await proxy.endpoint.post("/svc/x", content=b"body")
            assert resp.status_code == 200
            bodies.append(resp.text)
        assert bodies == ["1", "2", "3"]
        figures = (await proxy.figures())["s1"]
        assert figures["errors"] == 0 and figures["routes"]["only"]["errors"] == 0
        assert figures["routes"]["only"]["requests"] == 3
    finally:
        replica.close()
