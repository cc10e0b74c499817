"""Findings 3 and 17: a session's apps open only to its app secret, which only the manager and the
app-proxy hold.  Before: published container ports answered anyone on the host (Jupyter without a
token, the terminal page and its WebSocket, preopen ports), and the apps had no authentication.

Now every published port leads to the runner's app gate (runner/gate.py): a connection that does
not start with the session's secret gets 403 and is closed; the app-proxy and the manager's
/stream routes open with it.  The gate itself is tested against real local servers first (fast),
then the whole path with a real session."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import httpx
import pytest
import websockets

from tests.support.ports import free_port
from tests.support.sessions import IMAGE, running_system, shell
from workbay.manager.services.session_apps import app_secret
from workbay.runner import gate, protocol

pytestmark = pytest.mark.timeout(300)
SECRET = "s" * 64


# -- the gate against real local servers ------------------------------------------------------------
@pytest.fixture
async def app_server():
    """A tiny HTTP/1.1 app on loopback that echoes the request head it got."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                body = head
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def gated(app_server):
    g = gate.Gate(free_port(), app_server, SECRET)
    await g.start("127.0.0.1")
    yield g
    g.close()


async def _exchange(port: int, data: bytes, idle: float = 2) -> bytes:
    """What the gate port answers to ``data``: until it closes, or ``idle`` seconds of silence."""
    return await raw("127.0.0.1", port, data, idle)


async def test_the_gate_refuses_a_plain_request(gated):
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"http://127.0.0.1:{gated.gate_port}/")
    assert resp.status_code == 403 and "app-proxy" in resp.text


async def test_the_gate_refuses_a_wrong_secret(gated):
    out = await _exchange(gated.gate_port, protocol.gate_hello("x" * 64) + b"GET / HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403")
    # a secret that only starts like the right one is wrong too
    out = await _exchange(gated.gate_port, protocol.gate_hello(SECRET[:-1]) + b"GET / HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403")


async def test_the_gate_opens_to_the_secret_and_hides_it_from_the_app(gated):
    out = await _exchange(gated.gate_port, protocol.gate_hello(SECRET) + b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n"
                          b"GET /y HTTP/1.1\r\nhost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"GET /x" in out and b"GET /y" in out
    assert SECRET.encode() not in out  # the app saw requests, never the gate's line


async def test_the_gate_probe_says_whether_the_app_listens(gated, app_server):
    assert (await _exchange(gated.gate_port, protocol.gate_probe(SECRET))).strip() == b"READY"
    idle = free_port()
    g = gate.Gate(free_port(), idle, SECRET)  # nothing listens on its app port
    await g.start("127.0.0.1")
    try:
        assert (await _exchange(g.gate_port, protocol.gate_probe(SECRET))).strip() == b"WAIT"
        # a hello to an app that does not listen: closed, nothing sent
        assert await _exchange(g.gate_port, protocol.gate_hello(SECRET) + b"GET / HTTP/1.1\r\n\r\n") == b""
    finally:
        g.close()
    assert (await _exchange(gated.gate_port, protocol.gate_probe("y" * 64))).startswith(b"HTTP/1.1 403")


async def test_the_gate_closes_a_silent_or_endless_first_line(gated, monkeypatch):
    monkeypatch.setattr(gate, "HELLO_TIMEOUT", 0.3)
    g = gate.Gate(free_port(), gated.app_port, SECRET)
    await g.start("127.0.0.1")
    try:
        assert await _exchange(g.gate_port, b"") == b""  # an SSH client waits for a banner: none
        out = await _exchange(g.gate_port, b"A" * (gate.MAX_LINE + 10))
        assert out.startswith(b"HTTP/1.1 403")
    finally:
        g.close()


# -- a real session: published ports answer only through the app-proxy -------------------------------

async def start_http_server(client, sid: str, port: int) -> None:
    """A directory-listing HTTP server in the session, left running (query mode, detached)."""
    code = ("import subprocess\n"
            f"subprocess.Popen(['python3', '-m', 'http.server', '{port}'], cwd='/tmp', "
            "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, "
            "start_new_session=True)\n")
    result = (await client.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": code}))["result"]
    assert result["status"] == "finished", result


async def raw(host: str, port: int, data: bytes, timeout: float = 15) -> bytes:
    """What a port answers to ``data`` until it closes (or ``timeout``)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    out = b""
    try:
        writer.write(data)
        await writer.drain()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout)
            except TimeoutError:
                return out
            if not chunk:
                return out
            out += chunk
    finally:
        writer.close()


async def test_published_ports_open_only_with_the_session_secret(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with running_system(tmp_path, appproxy=True) as sysm:
        user = await sysm.login("user@workbay.local")
        created = await user.post("/session", json={
            "image": IMAGE, "name": f"gate-{uuid.uuid4().hex[:6]}",
            "config": {"resources": {"cpu": 1, "mem": "768m"}, "preopen_ports": [8080]}})
        assert created["status"] == "RUNNING", created
        sid = created["sessionId"]
        await start_http_server(user, sid, 8080)
        # the apps run (each opened through the app-proxy as the WebUI does)
        opened = {}
        for app in ("jupyter", "ttyd", "filebrowser", "8080", "sshd"):
            opened[app] = await user.post(f"/session/{sid}/start-service", json={"app": app})
        async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
            for app in ("jupyter", "ttyd", "filebrowser", "8080"):
                page = await browser.get(opened[app]["url"])
                assert page.status_code == 200, (app, page.status_code, page.text[:200])

        info = await user.get(f"/session/{sid}")
        ports = {p["name"]: p for p in info["service_ports"]}
        assert {"jupyter", "ttyd", "filebrowser", "sshd", "8080"} <= set(ports)
        secret = app_secret(sysm.config, sid)
        async with httpx.AsyncClient(timeout=30) as stranger:
            for name, p in ports.items():
                host, host_port = p["kernel_host"], p["host_ports"][0]
                if p["protocol"] == "tcp":
                    continue
                # finding 17: Jupyter without a token, the terminal page, the File Browser, the
                # preopen port -- straight at the published port, without the proxy
                resp = await stranger.get(f"http://{host}:{host_port}/")
                assert resp.status_code == 403, (name, resp.status_code, resp.text[:200])
                resp = await stranger.get(f"http://{host}:{host_port}/api/status")
                assert resp.status_code == 403, name
        ttyd = ports["ttyd"]
        # finding 3: the terminal's WebSocket gave a shell to whoever reached the port
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://{ttyd['kernel_host']}:{ttyd['host_ports'][0]}/websocket",
                                          open_timeout=15):
                pass
        assert refused.value.response.status_code == 403
        # sshd: no banner for a client that does not open with the secret
        sshd = ports["sshd"]
        out = await raw(sshd["kernel_host"], sshd["host_ports"][0], b"SSH-2.0-OpenSSH_9.2\r\n")
        assert out.startswith(b"HTTP/1.1 403") and b"SSH-2.0" not in out
        # a wrong secret is refused; the right one opens the same port (the 403 was the gate's)
        preopen = ports["8080"]
        out = await raw(preopen["kernel_host"], preopen["host_ports"][0],
                        protocol.gate_hello(app_secret(sysm.config, str(uuid.uuid4())))
                        + b"GET / HTTP/1.0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 403")
        out = await raw(preopen["kernel_host"], preopen["host_ports"][0],
                        protocol.gate_hello(secret) + b"GET / HTTP/1.0\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 200") and b"Directory listing" in out

        # the secret is nowhere a user can see it: not in the API, not in the session
        listed = json.dumps([info, opened, await user.get(f"/stream/session/{sid}/apps"),
                             await user.get("/sessions"),
                             await sysm.admin.get("/sessions", params={"all": "true"}),
                             await sysm.admin.get(f"/session/{sid}")])
        assert secret not in listed
        out, err = await shell(user, sid, "cat /opt/workbay/ipc/kernel.json; env; ps -eo args; "
                                          "cat /home/config/environ.txt /proc/1/environ")
        assert secret not in out + err and "Permission denied" in err
        # nor in the logs of any component
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert logged and secret not in logged


# -- what the agent publishes and where the secret goes (pure) ---------------------------------------
def test_the_agent_publishes_gates_never_app_ports():
    from decimal import Decimal

    from workbay.agent.kernel import add_gate_ports, build_container_body, kernel_environ, runner_config
    from workbay.agent.models import CreateKernels

    req = CreateKernels.model_validate({
        "session_id": "sess", "image": "img:1", "app_secret": SECRET, "environ": {"A": "1"},
        "kernels": [{"kernel_id": "k1", "resource_slots": {"cpu": "1", "mem": "1g"}}]})
    k = req.kernels[0]
    ports = add_gate_ports([{"name": "sshd", "protocol": "tcp", "container_ports": [2200]},
                            {"name": "odd", "protocol": "preopen", "container_ports": [61000]},
                            {"name": "jupyter", "protocol": "http", "container_ports": [8090]}])
    gates = [p for sp in ports for p in sp["gate_ports"]]
    assert gates == [61001, 61002, 61003]  # none an app port, none twice
    env = kernel_environ(req, k, Decimal(1), {}, ports)
    body = build_container_body(
        req=req, k=k, image="img:1", agent_id="a1", data_dir="/var/wb", env=env, host_config={},
        service_ports=ports, runner_dir="/r", ipc_dir="/i", scratch_dir="/s", ulimits={},
        host_ip="127.0.0.1", host_ports=[30000, 30001, 30002], slots={"cpu": Decimal(1)}, allocations={})
    assert set(body["HostConfig"]["PortBindings"]) == {f"{g}/tcp" for g in gates}
    assert set(body["ExposedPorts"]) == {f"{g}/tcp" for g in gates}
    # the secret reaches the runner's root-only kernel.json, not the container's environment
    assert SECRET not in json.dumps(body)
    cfg = runner_config(req, k, env, ports, {}, {})
    assert cfg["app_secret"] == SECRET and SECRET not in json.dumps(cfg["environ"])
