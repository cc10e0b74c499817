"""Backend.AI's streaming WebSockets on a real session (real Podman container, manager served by
uvicorn): execute with an input() round trip, the pty (tmux terminal), raw TCP to sshd, and the
refusals: another user, unsigned and badly signed handshakes, a session that does not exist."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support.sessions import IMAGE, running_system
from workbay.client.sdk import Client
from workbay.common import signing

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("stream")) as sysm:
        yield sysm


@pytest.fixture(scope="module")
async def session(system):
    user = await system.login("user@workbay.local")
    created = await user.post("/session", json={"image": IMAGE, "name": f"stream-{uuid.uuid4().hex[:6]}",
                                                "config": {"resources": {"cpu": 1, "mem": "512m"}}})
    assert created["status"] == "RUNNING", created
    return user, created["sessionId"]


def connect(client: Client, path: str, params: dict[str, str] | None = None, secret: str | None = None,
            signed: bool = True):
    """A WebSocket signed the way Backend.AI's client signs one (content type octet-stream, no
    Content-Type header)."""
    pq = path + (f"?{urlencode(params)}" if params else "")
    headers: dict[str, str] = {"X-BackendAI-Version": client.api_version}
    if signed:
        headers.update(signing.sign_headers(client.access_key, secret or client.secret_key, "GET", pq,
                                            urlsplit(client.endpoint).netloc, "application/octet-stream",
                                            client.api_version))
        del headers["Content-Type"]
    url = client.endpoint.replace("http://", "ws://") + pq
    return websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=120)


async def run_code(ws, code: str, inputs: list[str] | None = None, mode: str = "query",
                   options: dict | None = None) -> list[dict]:
    """Send an execute request and collect the results until ``finished``."""
    inputs = list(inputs or [])
    await ws.send(json.dumps({"code": code, "mode": mode, "options": options or {}}))
    got = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
        got.append(msg)
        if msg["status"] == "waiting-input":
            await ws.send(inputs.pop(0))
        elif msg["status"] in ("finished", "error"):
            return got


def stdout(results: list[dict]) -> str:
    return "".join(d for r in results for t, d in (r.get("console") or []) if t == "stdout")


async def test_execute_returns_the_printed_value(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        results = await run_code(ws, "print(6 * 7)")
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 0
    assert stdout(results).strip() == "42"
    assert set(results[-1]) == {"status", "console", "exitCode", "options", "files"}


async def test_execute_asks_for_input_and_takes_the_answer(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        results = await run_code(ws, "name = input('name? ')\nprint('hello', name[::-1])", inputs=["bob"])
    statuses = [r["status"] for r in results]
    assert "waiting-input" in statuses and statuses[-1] == "finished"
    assert "hello bob" in stdout(results)


async def test_a_run_left_waiting_for_input_is_interrupted(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        await ws.send(json.dumps({"code": "input('never answered? ')", "mode": "query", "options": {}}))
        while json.loads(await asyncio.wait_for(ws.recv(), 60))["status"] != "waiting-input":
            pass
    # the client left: the next run is not refused as busy
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        results = await run_code(ws, "print('free again')")
    assert results[-1]["status"] == "finished" and stdout(results).strip() == "free again"


async def test_execute_in_batch_mode(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        results = await run_code(ws, "", mode="batch", options={"exec": "echo batch-$((40+2)); exit 3"})
    assert "batch-42" in stdout(results)
    assert results[-1]["status"] == "finished" and results[-1]["exitCode"] == 3


async def test_execute_by_name_and_on_the_kernel_alias(session):
    user, sid = session
    name = (await user.get(f"/session/{sid}"))["name"]
    async with connect(user, f"/stream/kernel/{name}/execute") as ws:
        results = await run_code(ws, "print(sum(range(10)))")
    assert stdout(results).strip() == "45"


async def test_execute_with_a_bad_first_message_says_why(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        await ws.send(json.dumps({"code": "print(1)", "mode": "interactive"}))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert msg["status"] == "error" and "Invalid API parameters" in msg["msg"] and "mode" in msg["msg"]


async def test_an_admin_may_attach_to_a_users_session(system, session):
    _, sid = session
    async with connect(system.admin, f"/stream/session/{sid}/execute") as ws:
        results = await run_code(ws, "import getpass; print(getpass.getuser())")
    assert stdout(results).strip() == "work"


ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>])")


async def _read_pty(ws, pattern: str, timeout: float = 60) -> str:
    """The terminal's output, escape sequences taken out, until ``pattern`` matches."""
    seen = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not re.search(pattern, ESCAPES.sub("", seen)):
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"{pattern!r} never came; saw {ESCAPES.sub('', seen)[-500:]!r}")
        try:
            msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            continue
        assert msg["type"] == "out"
        seen += base64.b64decode(msg["data"]).decode("utf-8", "replace")
    return seen


def stdin(text: str) -> str:
    return json.dumps({"type": "stdin", "chars": base64.b64encode(text.encode()).decode()})


async def test_pty_runs_commands_resizes_and_restarts(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/pty") as ws:
        await ws.send(json.dumps({"type": "resize", "rows": 30, "cols": 100}))
        await ws.send(json.dumps({"type": "ping"}))
        await ws.send(stdin("echo answer-$((6*7))\r"))
        await _read_pty(ws, r"answer-42")                   # the answer, not the echoed command
        await ws.send(stdin("stty size | tr ' ' x\r"))     # tmux may draw a space as a cursor move
        await _read_pty(ws, r"\b(29|30)x100\b")             # tmux keeps a status line
        await ws.send(json.dumps({"type": "shout"}))       # ignored, the terminal goes on
        await ws.send(json.dumps({"type": "restart"}))
        await ws.send(stdin("echo restarted-$((2+3))\r"))
        await _read_pty(ws, r"restarted-5")


async def test_tcpproxy_carries_ssh(session):
    user, sid = session
    async with connect(user, f"/stream/session/{sid}/tcpproxy", {"app": "sshd"}) as ws:
        banner = await asyncio.wait_for(ws.recv(), 60)
        assert isinstance(banner, bytes) and banner.startswith(b"SSH-2.0-")
        await ws.send(b"SSH-2.0-workbay_test\r\n")
        kex = await asyncio.wait_for(ws.recv(), 60)
        assert isinstance(kex, bytes) and b"curve25519" in kex  # the server's key exchange offer
    # the older spelling and the "service" alias reach the same app
    async with connect(user, f"/stream/kernel/{sid}/httpproxy", {"service": "sshd"}) as ws:
        assert (await asyncio.wait_for(ws.recv(), 60)).startswith(b"SSH-2.0-")


async def test_tcpproxy_to_an_unknown_app_is_refused(session):
    user, sid = session
    with pytest.raises(InvalidStatus) as refused:
        async with connect(user, f"/stream/session/{sid}/tcpproxy", {"app": "no-such-app"}):
            pass
    assert refused.value.response.status_code == 400
    assert b"no app named" in refused.value.response.body
    with pytest.raises(InvalidStatus) as bad:
        async with connect(user, f"/stream/session/{sid}/tcpproxy", {"app": "sshd", "envs": "[1]"}):
            pass
    assert bad.value.response.status_code == 400
    assert json.loads(bad.value.response.body)["data"] == {"envs": "must be a JSON object"}


@pytest.mark.parametrize("route, params", [
    ("pty", None), ("execute", None), ("tcpproxy", {"app": "sshd"}), ("httpproxy", {"app": "sshd"}),
])
async def test_others_are_refused(system, session, route, params):
    _, sid = session
    other = await system.login("user2@workbay.local")
    for prefix in ("session", "kernel"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(other, f"/stream/{prefix}/{sid}/{route}", params):
                pass
        assert refused.value.response.status_code == 404
        assert json.loads(refused.value.response.body)["type"].endswith("/object-not-found")
    # unsigned, and signed with the wrong secret
    with pytest.raises(InvalidStatus) as unsigned:
        async with connect(other, f"/stream/session/{sid}/{route}", params, signed=False):
            pass
    assert unsigned.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as forged:
        async with connect(other, f"/stream/session/{sid}/{route}", params, secret="0" * 40):
            pass
    assert forged.value.response.status_code == 401
    assert json.loads(forged.value.response.body)["msg"] == "Signature mismatch"


async def test_a_missing_session_is_refused_with_a_reason(session):
    user, _ = session
    for route in ("pty", "execute", "tcpproxy?app=sshd"):
        path, _, query = route.partition("?")
        params = dict([query.split("=")]) if query else None
        with pytest.raises(InvalidStatus) as refused:
            async with connect(user, f"/stream/session/no-such-session/{path}", params):
                pass
        assert refused.value.response.status_code == 404
        problem = json.loads(refused.value.response.body)
        assert problem["type"].endswith("/object-not-found") and "session" in problem["title"].lower() + \
            problem.get("msg", "").lower()


async def test_an_ip_allow_list_applies_to_websockets(system, session):
    user, sid = session
    await system.admin.patch("/admin/users/user@workbay.local", json={"allowed_client_ip": ["10.9.8.0/24"]})
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(user, f"/stream/session/{sid}/execute"):
                pass
        assert refused.value.response.status_code == 401
        assert "not allowed" in json.loads(refused.value.response.body)["msg"]
    finally:
        await system.admin.patch("/admin/users/user@workbay.local", json={"allowed_client_ip": None})
    async with connect(user, f"/stream/session/{sid}/execute") as ws:
        assert stdout(await run_code(ws, "print('back')")).strip() == "back"
