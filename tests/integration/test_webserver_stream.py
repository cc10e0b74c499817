"""The stream API through the webserver's ``/func`` proxy (Backend.AI's session mode): a client
with only the login cookie opens ``/func/stream/session/{id}/…`` WebSockets that the webserver
signs with the user's keypair and relays to the manager — execute, pty and tcpproxy (sshd) on a
real session (real Podman container) — and the refusals: no cookie (401), another user's cookie
(the manager's 404 with its problem+json), a cross-site Origin (403), a path outside the stream
API (404)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.sessions import DEMO_PASSWORD, IMAGE, running_system
from workbay.web.cookies import SESSION_COOKIE
from workbay.web.routes.proxy_ws import BAD_GATEWAY, GOING_AWAY, sendable_close

pytestmark = pytest.mark.timeout(500)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-stream"), webserver=True) as sysm:
        yield sysm


async def web_cookie(system, email: str) -> str:
    """Log in through the webserver as the official client does; the cookie it answers with."""
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as http:
        resp = await http.post("/server/login", json={"username": email, "password": DEMO_PASSWORD})
        assert resp.json()["authenticated"] is True, resp.text
        return http.cookies[SESSION_COOKIE]


@pytest.fixture(scope="module")
async def session(system):
    user = await system.login("user@workbay.local")
    created = await user.post("/session", json={"image": IMAGE, "name": f"wstream-{uuid.uuid4().hex[:6]}",
                                                "config": {"resources": {"cpu": 1, "mem": "512m"}}})
    assert created["status"] == "RUNNING", created
    return created["sessionId"], await web_cookie(system, "user@workbay.local")


def connect(system, path: str, cookie: str | None, origin: str | None = None):
    """A WebSocket to the webserver carrying only the login cookie (and an Origin when given), as
    the official client in session mode (or a browser) opens one."""
    headers = {}
    if cookie is not None:
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    if origin is not None:
        headers["Origin"] = origin
    url = system.web_url.replace("http://", "ws://") + "/func" + path
    return websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=180)


async def run_code(ws, code: str, inputs: list[str] | None = None) -> list[dict]:
    inputs = list(inputs or [])
    await ws.send(json.dumps({"code": code, "mode": "query", "options": {}}))
    got = []
    while True:
        frame = await asyncio.wait_for(ws.recv(), 120)
        assert isinstance(frame, str), "execute results are text frames"
        msg = json.loads(frame)
        got.append(msg)
        if msg["status"] == "waiting-input":
            await ws.send(inputs.pop(0))
        elif msg["status"] in ("finished", "error"):
            return got


def stdout(results: list[dict]) -> str:
    return "".join(d for r in results for t, d in (r.get("console") or []) if t == "stdout")


async def test_execute_through_the_webserver(system, session):
    sid, cookie = session
    async with connect(system, f"/stream/session/{sid}/execute", cookie) as ws:
        results = await run_code(ws, "x = input('n? ')\nprint(int(x) * 2)", inputs=["21"])
        assert [r["status"] for r in results][0] == "waiting-input"
        assert results[-1]["status"] == "finished" and stdout(results).strip().endswith("42")
        # the manager closes after the run; its close reaches the client as a normal close
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 60)
        assert ws.close_code == 1000


async def test_a_browser_of_the_same_origin_may_connect(system, session):
    sid, cookie = session
    async with connect(system, f"/stream/kernel/{sid}/execute", cookie, origin=system.web_url) as ws:
        results = await run_code(ws, "print(sum(range(10)))")
    assert stdout(results).strip() == "45"


async def test_large_output_arrives_whole(system, session):
    sid, cookie = session
    async with connect(system, f"/stream/session/{sid}/execute", cookie) as ws:
        results = await run_code(ws, "print('x' * 1_500_000, end='')")
    assert stdout(results) == "x" * 1_500_000


async def test_tcpproxy_carries_ssh_as_binary_frames(system, session):
    sid, cookie = session
    async with connect(system, f"/stream/session/{sid}/tcpproxy?app=sshd", cookie) as ws:
        banner = await asyncio.wait_for(ws.recv(), 60)
        assert isinstance(banner, bytes) and banner.startswith(b"SSH-2.0-")
        await ws.send(b"SSH-2.0-workbay_test\r\n")
        kex = await asyncio.wait_for(ws.recv(), 60)
        assert isinstance(kex, bytes) and b"curve25519" in kex


ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>])")


async def test_pty_echoes(system, session):
    sid, cookie = session
    async with connect(system, f"/stream/session/{sid}/pty", cookie) as ws:
        await ws.send(json.dumps({"type": "resize", "rows": 24, "cols": 80}))
        await ws.send(json.dumps({"type": "stdin",
                                  "chars": base64.b64encode(b"echo answer-$((6*7))\r").decode()}))
        seen = ""
        # only the output has "answer-42"; tmux may draw lines with cursor moves, not "\r\n"
        while "answer-42" not in ESCAPES.sub("", seen):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert msg["type"] == "out"
            seen += base64.b64decode(msg["data"]).decode("utf-8", "replace")


@pytest.mark.parametrize("route", ["execute", "pty", "tcpproxy?app=sshd"])
async def test_another_users_cookie_is_refused_by_the_manager(system, session, route):
    sid, _ = session
    other = await web_cookie(system, "user2@workbay.local")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(system, f"/stream/session/{sid}/{route}", other):
            pass
    assert refused.value.response.status_code == 404
    assert refused.value.response.headers["content-type"] == "application/problem+json"
    assert json.loads(refused.value.response.body)["type"].endswith("/object-not-found")


async def test_without_a_login_the_handshake_is_refused(system, session):
    sid, _ = session
    for cookie in (None, "not-a-signed-session"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(system, f"/stream/session/{sid}/execute", cookie):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["title"] == "Unauthorized access"


async def test_a_logged_out_cookie_is_refused(system, session):
    sid, _ = session
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as http:
        await http.post("/server/login", json={"username": "user@workbay.local", "password": DEMO_PASSWORD})
        cookie = http.cookies[SESSION_COOKIE]
        assert (await http.post("/server/logout")).status_code < 400
    with pytest.raises(InvalidStatus) as refused:
        async with connect(system, f"/stream/session/{sid}/execute", cookie):
            pass
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_a_cross_site_origin_is_refused(system, session, origin):
    sid, cookie = session
    with pytest.raises(InvalidStatus) as refused:
        async with connect(system, f"/stream/session/{sid}/execute", cookie, origin=origin):
            pass
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["type"].endswith("/generic-forbidden")


async def test_only_the_stream_api_takes_websockets(system, session):
    _, cookie = session
    with pytest.raises(InvalidStatus) as refused:
        async with connect(system, "/events/notifications", cookie):
            pass
    assert refused.value.response.status_code == 404


def test_close_codes_that_cannot_be_sent_are_translated():
    assert sendable_close(4001, "bye", lost=BAD_GATEWAY) == (4001, "bye")
    assert sendable_close(1011, "The app is not answering.", lost=BAD_GATEWAY) == (
        1011, "The app is not answering.")
    assert sendable_close(1005, "", lost=BAD_GATEWAY) == (1000, "")       # no status: a normal close
    assert sendable_close(None, "", lost=GOING_AWAY) == (1000, "")
    assert sendable_close(1006, "", lost=BAD_GATEWAY) == (BAD_GATEWAY, "")   # the connection was lost
    assert sendable_close(1006, "", lost=GOING_AWAY) == (GOING_AWAY, "")
    code, reason = sendable_close(1000, "é" * 100, lost=BAD_GATEWAY)
    assert code == 1000 and len(reason.encode()) <= 123 and reason == "é" * 61


async def test_an_unreachable_manager_is_a_bad_gateway(system, session):
    """Last in the module: the manager is stopped for it and started again afterwards."""
    sid, cookie = session
    system.stop_manager()
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(system, f"/stream/session/{sid}/execute", cookie):
                pass
        assert refused.value.response.status_code == 502
        assert json.loads(refused.value.response.body)["type"].endswith("/bad-gateway")
    finally:
        system.start_manager()
