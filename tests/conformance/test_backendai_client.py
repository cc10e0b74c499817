"""Conformance with the official Backend.AI client SDK (``backend.ai-client`` 23.9.10).

The SDK pins old dependencies, so it lives in its own virtual environment, ``.venv-bai`` at the
repository root (``make setup`` creates it: ``python3 -m venv .venv-bai && .venv-bai/bin/pip
install backend.ai-client==23.9.10 yarl==1.9.4`` — yarl ≥ 1.10 breaks the SDK's signing).
A real manager runs on a free port (uvicorn, in this process); the SDK talks to it from a
subprocess of that venv.  A second test reproduces the SDK's exact header set with httpx, so
the wire format stays pinned even where the venv is not at hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.support.databases import throwaway_db
from tests.support.manager import start_manager
from workbay.common import signing

ROOT = Path(__file__).resolve().parents[2]
BAI_PYTHON = ROOT / ".venv-bai" / "bin" / "python"
USER_AGENT = "Backend.AI Client for Python 23.09.10"  # what 23.9.10 really sends
PASSWORD = "Conf0rm!pass"


@pytest.fixture(scope="module")
async def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance")
    async with throwaway_db("sqlite", tmp) as url:
        h = await start_manager(url, tmp)
        try:
            yield h
        finally:
            await h.close()


class Recorder:
    """ASGI wrapper that keeps the request headers of every request it passes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            self.requests.append((scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def serve(app):
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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()


CLIENT_SCRIPT = r'''
import asyncio, json, os, sys
from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import BackendAPIError
from ai.backend.client.func.auth import Auth
from ai.backend.client.func.manager import Manager
from ai.backend.client.request import Request
from ai.backend.client.session import AsyncSession

EP, AK, SK, PW = (os.environ[k] for k in ("EP", "AK", "SK", "PW"))
NEW_PW = PW + "2"


def config(secret=SK, hash_type="sha256"):
    return APIConfig(endpoint=EP, endpoint_type="api", access_key=AK, secret_key=secret,
                     hash_type=hash_type)


async def main():
    out = {}
    async with AsyncSession(config=config()) as sess:
        out["api_version"] = list(sess.api_version)
        async with Request("GET", "/auth/test", params={"echo": "hi there/?&"}).fetch() as resp:
            out["get_echo"] = [resp.status, await resp.json()]
        rq = Request("POST", "/auth")
        rq.set_json({"echo": {"a": [1, 2]}})
        async with rq.fetch() as resp:
            out["post_echo"] = [resp.status, await resp.json()]
        async with Request("GET", "/user/me").fetch() as resp:
            out["me"] = (await resp.json())["email"]
        out["announcement"] = await Manager.get_announcement()
        out["update_password"] = await Auth.update_password(PW, NEW_PW, NEW_PW)
        try:
            await Auth.update_password(NEW_PW, "Xx1!aaaaa", "Xx1!bbbbb")
        except BackendAPIError as e:
            out["mismatch"] = [e.status, e.data]
        try:
            await Auth.update_password("Wr0ng!pass", "Xx1!aaaaa", "Xx1!aaaaa")
        except BackendAPIError as e:
            out["wrong_old"] = [e.status, e.data]
        async with Request("GET", "/events/notifications").connect_events() as events:
            async for ev in events.fetch_events():
                out["sse_first"] = [ev.event, json.loads(ev.data)]
                break
    async with AsyncSession(config=config(hash_type="sha512")) as sess:
        async with Request("GET", "/auth/test", params={"echo": "512"}).fetch() as resp:
            out["sha512"] = await resp.json()
    async with AsyncSession(config=config(secret="x" * 40)) as sess:
        try:
            async with Request("GET", "/auth/test").fetch() as resp:
                out["bad_secret"] = [resp.status]
        except BackendAPIError as e:
            out["bad_secret"] = [e.status, e.data]
    print(json.dumps(out))


asyncio.run(main())
'''


async def test_official_client_talks_to_the_manager(live, tmp_path):
    assert BAI_PYTHON.exists(), (
        f"{BAI_PYTHON} is missing: the official client needs its own venv "
        "(python3 -m venv .venv-bai && .venv-bai/bin/pip install backend.ai-client==23.9.10 yarl==1.9.4)")
    h = live
    user = await h.admin().post("/admin/users", json={
        "email": "sdk@example.test", "username": "sdk", "password": PASSWORD})
    recorder = Recorder(h.app)
    async with serve(recorder) as endpoint:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
               "EP": endpoint, "AK": user["keypair"]["access_key"],
               "SK": user["keypair"]["secret_key"], "PW": PASSWORD}
        proc = await asyncio.create_subprocess_exec(
            str(BAI_PYTHON), "-c", CLIENT_SCRIPT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    got = json.loads(out.decode().strip().splitlines()[-1])

    assert got["api_version"] == [7, "20230615"]                  # negotiated from GET /
    assert got["get_echo"] == [200, {"authorized": "yes", "echo": "hi there/?&"}]
    assert got["post_echo"] == [200, {"authorized": "yes", "echo": {"a": [1, 2]}}]
    assert got["me"] == "sdk@example.test"
    assert got["announcement"] == {"enabled": False, "message": ""}
    assert got["update_password"] == {}
    assert got["mismatch"][0] == 400 and got["mismatch"][1]["error_msg"] == "new password mismatch"
    assert got["wrong_old"][0] == 401
    assert got["wrong_old"][1]["type"] == "https://api.backend.ai/probs/auth-failed"
    assert got["sse_first"] == ["hello", {"user": "sdk@example.test"}]
    assert got["sha512"] == {"authorized": "yes", "echo": "512"}
    assert got["bad_secret"][0] == 401
    assert got["bad_secret"][1]["title"] == "Credential/signature mismatch."
    # the password really changed through the SDK
    login = await h.client().post("/auth/authorize", json={
        "type": "keypair", "domain": "default", "username": "sdk@example.test", "password": PASSWORD + "2"})
    assert login["data"]["access_key"] == user["keypair"]["access_key"]

    # what the SDK put on the wire is what docs/backendai-api.md §1.1 says
    probe = [r for r in recorder.requests if r[1] == "/"]
    assert probe and "authorization" not in probe[0][2]           # the version probe is unsigned
    signed = [r for r in recorder.requests if r[1] == "/auth/test"]
    assert signed
    for _, _, hdrs in signed:
        assert hdrs["user-agent"] == USER_AGENT
        assert hdrs["x-backendai-domain"] == "default"
        assert hdrs["x-backendai-version"] == "v7.20230615"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", hdrs["date"])
        assert hdrs["content-type"] == "text/plain"
        assert re.fullmatch(r"BackendAI signMethod=HMAC-SHA(256|512), credential=\w{20}:[0-9a-f]+",
                            hdrs["authorization"])
    sse = [r for r in recorder.requests if r[1] == "/events/notifications"]
    assert sse and "content-type" not in sse[0][2]                 # SSE: no header, signed as octet-stream


async def test_the_clients_exact_header_set_is_accepted(live):
    """The headers the SDK sends (recorded above), reproduced byte for byte with httpx."""
    h = live
    date = datetime.now(UTC).replace(microsecond=678901).isoformat()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.678901\+00:00", date)
    host = "127.0.0.1:8091"
    ak, sk = h.admin_access_key, h.admin_secret_key
    for method, path_and_query, ctype, content in [
        ("GET", "/auth/test?echo=hi%20there", "text/plain", None),
        ("POST", "/auth/test", "application/json", b'{"echo": "x"}'),
    ]:
        sig = signing.signature(sk, method, path_and_query, date, host, ctype, "v7.20230615")
        headers = {
            "User-Agent": USER_AGENT,
            "X-BackendAI-Domain": "default",
            "X-BackendAI-Version": "v7.20230615",
            "Date": date,
            "Content-Type": ctype,
            "Authorization": f"BackendAI signMethod=HMAC-SHA256, credential={ak}:{sig}",
            "Host": host,
        }
        transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
            resp = await c.request(method, path_and_query, headers=headers, content=content)
        assert resp.status_code == 200, resp.text
        assert resp.json()["authorized"] == "yes"
        assert resp.headers["X-RateLimit-Window"] == "900"
    # the anonymous version probe: only a User-Agent
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
        probe = await c.get("/", headers={"User-Agent": USER_AGENT})
    assert probe.status_code == 200
    assert re.fullmatch(r"v\d+\.\d{8}", probe.json()["version"])
