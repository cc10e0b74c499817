"""Finding 3: sessions of different users could reach each other over the network.  All containers
shared Podman's default bridge, so from user B's container user A's container address answered on
the terminal (7681: a shell as A), Jupyter (8090), preopen (8080) and sshd (2200) ports.

Now every session has a bridge network of its own, isolated from every other (netavark's
``isolate``), with egress kept; the network goes with the session's last kernel on the node, and an
agent that comes back sweeps those left behind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pytest

from tests.support.sessions import IMAGE, running_system, wait_for

pytestmark = pytest.mark.timeout(300)

# A's apps (terminal, Jupyter, File Browser, preopen, sshd) and the gate ports in front of them.
PORTS = [7681, 8090, 8091, 8095, 8080, 2200, *range(61000, 61008)]

PROBE = r'''
import json, socket, struct
from concurrent.futures import ThreadPoolExecutor

def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))

def try_connect(target):
    host, port = target
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "open"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()

targets = [(h.replace("GATEWAY", gateway()), p) for h, p in TARGETS]
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps([f"{h}:{p}" for h, p in targets]))
    print(json.dumps(list(pool.map(try_connect, targets))))
'''


async def run(client, sid: str, code: str) -> str:
    result = (await client.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": code}))["result"]
    out = "".join(d for t, d in result["console"] if t == "stdout")
    runs = 0
    while result["status"] == "continued" and runs < 100:
        result = (await client.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                              "code": ""}))["result"]
        out += "".join(d for t, d in result["console"] if t == "stdout")
        runs += 1
    assert result["status"] == "finished", result
    return out


async def probe(client, sid: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    out = (await run(client, sid, f"TARGETS = {targets!r}\n" + PROBE)).strip().splitlines()
    return dict(zip(json.loads(out[0]), json.loads(out[1]), strict=True))


def container_of(sid: str) -> dict:
    ids = subprocess.run(["podman", "ps", "-q", "--filter", f"label=ai.backend.session-id={sid}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(ids) == 1, ids
    return json.loads(subprocess.run(["podman", "inspect", ids[0]], capture_output=True, text=True,
                                     timeout=60, check=True).stdout)[0]


def network_exists(name: str) -> bool:
    return subprocess.run(["podman", "network", "exists", name], capture_output=True, timeout=60).returncode == 0


async def start_server(client, sid: str, port: int) -> None:
    await run(client, sid, "import subprocess\n"
                           f"subprocess.Popen(['python3', '-m', 'http.server', '{port}'], cwd='/tmp', "
                           "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, "
                           "start_new_session=True)\n")


async def test_sessions_of_different_users_cannot_reach_each_other(tmp_path):
    async with running_system(tmp_path, appproxy=True) as sysm:
        alice = await sysm.login("user@workbay.local")
        bob = await sysm.login("user2@workbay.local")
        a = await alice.post("/session", json={"image": IMAGE, "name": f"a-{uuid.uuid4().hex[:6]}", "config": {
            "resources": {"cpu": 1, "mem": "768m"}, "preopen_ports": [8080]}})
        b = await bob.post("/session", json={"image": IMAGE, "name": f"b-{uuid.uuid4().hex[:6]}", "config": {
            "resources": {"cpu": 0.5, "mem": "256m"}}})
        assert a["status"] == b["status"] == "RUNNING", (a, b)
        sa, sb = a["sessionId"], b["sessionId"]
        await start_server(alice, sa, 8080)
        for app in ("ttyd", "jupyter"):  # A's terminal and Jupyter listen too
            await alice.post(f"/session/{sa}/start-service", json={"app": app})

        # each session on a network of its own, isolated, and nothing else
        nets = {}
        for sid in (sa, sb):
            info = container_of(sid)
            attached = info["NetworkSettings"]["Networks"]
            name = f"wb-{uuid.UUID(sid).hex[:12]}"
            assert list(attached) == [name], attached
            nets[sid] = (name, attached[name]["IPAddress"])
            net = json.loads(subprocess.run(["podman", "network", "inspect", name], capture_output=True,
                                            text=True, timeout=60, check=True).stdout)[0]
            assert net["options"].get("isolate") == "true"
            assert net["labels"]["ai.backend.session-id"] == sid
        a_ip, b_ip = nets[sa][1], nets[sb][1]
        assert a_ip != b_ip

        # a container of another isolated network ends (as when any other session ends): netavark
        # 1.4 then drops its isolation jump for every network -- the agent's own rules stay
        other = f"wbtest-iso-{uuid.uuid4().hex[:8]}"
        subprocess.run(["podman", "network", "create", "--opt", "isolate=true", other], capture_output=True,
                       timeout=60, check=True)
        try:
            subprocess.run(["podman", "run", "--rm", "--network", other, IMAGE, "true"], capture_output=True,
                           timeout=120, check=True)
        finally:
            subprocess.run(["podman", "network", "rm", "-f", other], capture_output=True, timeout=60)

        # A reaches its own apps at its own address (so the ports below are open)...
        own = await probe(alice, sa, [(a_ip, 2200), (a_ip, 8080), (a_ip, 61000)])
        assert set(own.values()) == {"open"}, own
        # ...B reaches none of them, on any of the ports, nor A's published ports on the host
        ports = {p["name"]: p for p in (await alice.get(f"/session/{sa}"))["service_ports"]}
        published = [("GATEWAY", hp) for p in ports.values() for hp in p["host_ports"]]
        seen = await probe(bob, sb, [(a_ip, p) for p in PORTS] + published)
        assert "open" not in seen.values(), seen

        # egress kept: B reaches a service on the host beyond its bridge
        async def answer(reader, writer):
            writer.write(b"hello from the host\n")
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(answer, "0.0.0.0", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            reached = await probe(bob, sb, [("GATEWAY", port)])
            assert list(reached.values()) == ["open"], reached
        finally:
            server.close()

        # the network goes with the session
        await alice.delete(f"/session/{sa}")
        await sysm.wait_status(alice, sa, "TERMINATED")
        await wait_for(lambda: asyncio.to_thread(lambda: not network_exists(nets[sa][0])), 30,
                       "A's network is removed")
        assert network_exists(nets[sb][0])

        # an agent that comes back sweeps the network of a kernel that vanished meanwhile
        sysm.stop_agent()
        subprocess.run(["podman", "rm", "-f", container_of(sb)["Id"]], capture_output=True, timeout=60, check=True)
        sysm.start_agent()
        await wait_for(lambda: asyncio.to_thread(lambda: not network_exists(nets[sb][0])), 60,
                       "B's network is swept")
