"""Apps in real sessions through the real app-proxy: Jupyter over HTTP and WebSocket with the
circuit's cookie (and refused without it), public circuits, SSH on a TCP circuit and through the
TCP-over-WebSocket tunnel, another user refused, circuits closed when the session ends."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid

import httpx
import pytest
import websockets

from tests.support.sessions import IMAGE, SMALL, running_system
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("apps"), appproxy=True) as sysm:
        yield sysm


@pytest.fixture(scope="module")
async def session(system):
    user = await system.login("user@workbay.local")
    created = await user.post("/session", json={"image": IMAGE, "name": f"apps-{uuid.uuid4().hex[:6]}",
                                                "config": {"resources": {"cpu": 1, "mem": "768m"}}})
    assert created["status"] == "RUNNING", created
    return user, created["sessionId"]


async def test_apps_are_listed(session):
    user, sid = session
    names = {a["name"]: a for a in await user.get(f"/stream/session/{sid}/apps")}
    assert {"jupyter", "jupyterlab", "sshd"} <= set(names)
    assert names["sshd"]["protocol"] == "tcp"


async def test_jupyter_through_the_proxy_needs_the_cookie(system, session):
    user, sid = session
    opened = await user.post(f"/session/{sid}/start-service", json={"app": "jupyter"})
    assert opened["protocol"] == "http" and opened["url"].startswith(f"http://127.0.0.1:{opened['port']}/")
    async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
        page = await browser.get(opened["url"])
        assert page.status_code == 200 and "Jupyter" in page.text
        assert str(page.url).endswith("/tree")
        status = await browser.get(f"http://127.0.0.1:{opened['port']}/api/status")
        assert status.status_code == 200 and "started" in status.json()
        # a kernel over WebSocket, through the proxy, with the same cookie
        xsrf = {"X-XSRFToken": browser.cookies.get("_xsrf")} if browser.cookies.get("_xsrf") else {}
        created = await browser.post(f"http://127.0.0.1:{opened['port']}/api/kernels", json={}, headers=xsrf)
        assert created.status_code == 201, created.text
        kernel = created.json()
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        ws_url = f"ws://127.0.0.1:{opened['port']}/api/kernels/{kernel['id']}/channels"
        async with websockets.connect(ws_url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
            await ws.send('{"header": {"msg_id": "m1", "msg_type": "kernel_info_request", "username": "", '
                          '"session": "s1", "version": "5.3"}, "parent_header": {}, "metadata": {}, '
                          '"content": {}, "channel": "shell"}')
            reply = None
            for _ in range(50):
                msg = await asyncio.wait_for(ws.recv(), 30)
                if '"kernel_info_reply"' in msg:
                    reply = msg
                    break
            assert reply is not None
    async with httpx.AsyncClient(timeout=30) as stranger:
        refused = await stranger.get(f"http://127.0.0.1:{opened['port']}/api/status")
        assert refused.status_code == 403
        expired = await stranger.get(f"http://127.0.0.1:{opened['port']}/__workbay/open?token=forged")
        assert expired.status_code == 403
        with pytest.raises(websockets.InvalidStatus if hasattr(websockets, "InvalidStatus") else Exception):
            async with websockets.connect(ws_url):
                pass


async def test_public_circuit_and_other_users(system, session):
    user, sid = session
    opened = await user.post(f"/session/{sid}/start-service", json={"app": "jupyterlab", "open_to_public": True})
    async with httpx.AsyncClient(timeout=60) as anyone:
        assert (await anyone.get(opened["public_url"] + "/api/status")).status_code == 200
    other = await system.login("user2@workbay.local")
    with pytest.raises(APIError) as e:
        await other.post(f"/session/{sid}/start-service", json={"app": "jupyter"})
    assert e.value.status == 404
    with pytest.raises(APIError) as e:
        await user.post(f"/session/{sid}/start-service", json={"app": "no-such-app"})
    assert e.value.status == 400


async def _private_key(user, sid: str, tmp_path) -> str:
    result = (await user.post(f"/session/{sid}", json={
        "mode": "batch", "runId": "", "code": "", "options": {"exec": "cat /home/work/id_container"}}))["result"]
    while result["status"] == "continued":
        result = (await user.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                            "code": ""}))["result"]
    key = "".join(d for t, d in result["console"] if t == "stdout")
    assert "PRIVATE KEY" in key
    path = tmp_path / "id_container"
    path.write_text(key)
    os.chmod(path, 0o600)
    return str(path)


SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


async def test_ssh_on_a_tcp_circuit_and_through_the_tunnel(system, session, tmp_path):
    user, sid = session
    opened = await user.post(f"/session/{sid}/start-service", json={"app": "sshd"})
    assert opened["protocol"] == "tcp" and opened["url"] is None
    key = await _private_key(user, sid, tmp_path)
    out = await asyncio.to_thread(subprocess.run, ["ssh", *SSH_OPTS, "-i", key, "-p", str(opened["port"]),
                                                   "work@127.0.0.1", "echo $((6*7))"],
                                  capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr
    # TCP over WebSocket: the SSH banner comes through the tunnel
    async with websockets.connect(opened["tcp_url"], max_size=None) as ws:
        banner = await asyncio.wait_for(ws.recv(), 30)
        assert bytes(banner).startswith(b"SSH-2.0-")
    with pytest.raises((websockets.exceptions.WebSocketException, OSError)):
        async with websockets.connect(opened["tcp_url"].split("?")[0] + "?token=forged") as ws:
            await asyncio.wait_for(ws.recv(), 10)


async def test_the_registered_ssh_key_gets_into_new_sessions(system, tmp_path):
    """ID-13: the SSH keypair a user generates in Preferences opens their sessions' sshd."""
    user = await system.login("user2@workbay.local")
    generated = await user.patch("/auth/ssh-keypair")
    assert "PRIVATE KEY" in generated["ssh_private_key"]
    key = tmp_path / "registered"
    key.write_text(generated["ssh_private_key"])
    os.chmod(key, 0o600)
    created = await user.post("/session", json={"image": IMAGE, "name": f"regkey-{uuid.uuid4().hex[:6]}",
                                                "config": {"resources": SMALL}})
    sid = created["sessionId"]
    try:
        opened = await user.post(f"/session/{sid}/start-service", json={"app": "sshd"})
        out = await asyncio.to_thread(subprocess.run, ["ssh", *SSH_OPTS, "-i", str(key), "-p", str(opened["port"]),
                                                       "work@127.0.0.1", "echo $((6*7)); ls -A ~/.ssh | wc -l"],
                                      capture_output=True, text=True, timeout=60)
        assert out.stdout.split() == ["42", "0"], out.stderr   # and nothing was written into ~/.ssh
    finally:
        await user.delete(f"/session/{sid}")


async def test_circuits_close_with_the_session(system):
    user = await system.login("user@workbay.local")
    created = await user.post("/session", json={"image": IMAGE, "name": f"gone-{uuid.uuid4().hex[:6]}",
                                                "config": {"resources": SMALL}})
    sid = created["sessionId"]
    opened = await user.post(f"/session/{sid}/start-service", json={"app": "sshd"})
    secret = system.config.secrets.appproxy
    api = system.config.appproxy.api_url
    async with httpx.AsyncClient(headers={"X-Workbay-Secret": secret}) as http:
        assert (await http.get(f"{api}/v1/circuits", params={"session_id": sid})).json()["circuits"]
        await user.delete(f"/session/{sid}")
        await system.wait_status(user, sid, "TERMINATED")
        for _ in range(100):
            if not (await http.get(f"{api}/v1/circuits", params={"session_id": sid})).json()["circuits"]:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(f"{api}/v1/circuits", params={"session_id": sid})).json()["circuits"] == []
        assert (await httpx.AsyncClient().get(f"{api}/v1/circuits")).status_code == 401
    with pytest.raises(OSError):
        _, w = await asyncio.open_connection("127.0.0.1", opened["port"])
        w.close()


async def _read_until(ws, needle: str, timeout: float = 30) -> str:
    seen = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in seen:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"{needle!r} never came; saw {seen[-500:]!r}")
        msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        if msg[0] == "stdout":
            seen += msg[1]
    return seen


async def test_web_terminal_runs_in_tmux_and_survives_reconnects(system, session):
    user, sid = session
    opened = await user.post(f"/session/{sid}/start-service", json={"app": "ttyd"})
    base = f"ws://127.0.0.1:{opened['port']}/websocket"
    async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
        page = await browser.get(opened["url"])
        assert page.status_code == 200 and "/__workbay/assets/xterm.js" in page.text
        asset = await browser.get(f"http://127.0.0.1:{opened['port']}/__workbay/assets/xterm.js")
        assert asset.status_code == 200 and "Terminal" in asset.text
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    async with websockets.connect(base, additional_headers={"Cookie": cookie}) as ws:
        await ws.send(json.dumps(["set_size", 24, 80]))
        await ws.send(json.dumps(["stdin", "echo The answer is $((6*7))\r"]))
        await _read_until(ws, "The answer is 42")
    # a new window (or a reconnect) attaches to the same tmux session: the screen comes back
    async with websockets.connect(base, additional_headers={"Cookie": cookie}) as ws:
        await ws.send(json.dumps(["set_size", 30, 100]))
        await _read_until(ws, "The answer is 42")
        await ws.send(json.dumps(["stdin", "tmux display-message -p 'session=#S'\r"]))
        await _read_until(ws, "session=main")
    with pytest.raises((websockets.exceptions.WebSocketException, OSError)):
        async with websockets.connect(base) as ws:  # no cookie
            await asyncio.wait_for(ws.recv(), 10)


async def test_files_download_from_the_session(system, session):
    user, sid = session
    resp = await user.request("GET", f"/session/{sid}/download_single", params={"file": "id_container"}, raw=True)
    assert b"PRIVATE KEY" in resp.content and 'filename="id_container"' in resp.headers["content-disposition"]
    multi = await user.request("GET", f"/session/{sid}/download", json={"files": ["id_container", "/etc/hostname"]},
                               raw=True)
    assert multi.headers["content-type"].startswith("multipart/mixed")
    assert multi.content.count(b"Content-Type: application/x-tar") == 2
    for bad, status in (({"file": "/no/such/file"}, 404), ({"file": "/etc"}, 400)):
        with pytest.raises(APIError) as e:
            await user.request("GET", f"/session/{sid}/download_single", params=bad, raw=True)
        assert e.value.status == status, bad
    other = await system.login("user2@workbay.local")
    with pytest.raises(APIError) as e:
        await other.request("GET", f"/session/{sid}/download_single", params={"file": "id_container"}, raw=True)
    assert e.value.status == 404


async def test_an_app_asked_again_with_other_arguments_restarts(session):
    user, sid = session
    result = (await user.post(f"/session/{sid}", json={"mode": "batch", "runId": "", "code": "", "options": {
        "exec": "mkdir -p /home/work/sub && touch /home/work/sub/marker"}}))["result"]
    while result["status"] == "continued":
        result = (await user.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                            "code": ""}))["result"]

    async def names(root: str) -> set[str]:
        opened = await user.post(f"/session/{sid}/start-service", json={"app": "filebrowser",
                                                                         "arguments": {"root": root}})
        async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
            await browser.get(opened["url"])
            listing = (await browser.get(f"http://127.0.0.1:{opened['port']}/api/list", params={"path": ""})).json()
        return {e["name"] for e in listing.get("entries", listing.get("items", []))}
    assert "sub" in await names("/home/work")
    assert await names("/home/work/sub") == {"marker"}
