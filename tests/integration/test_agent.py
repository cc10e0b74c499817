"""The agent with real containers (Podman or Docker through the Docker Engine API).

The agent runs in-process behind uvicorn; a small FastAPI app stands in for the manager's internal
API and records the heartbeats and kernel events it receives (a real HTTP peer, no mocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from tests.support.ports import free_port
from tests.support.sessions import host_port_range
from workbay.agent.agent import generate_ssh_keypair
from workbay.agent.app import create_app
from workbay.agent.client import AgentClient, AgentError
from workbay.agent.engine import Engine, EngineUnreachable, engine_candidates
from workbay.common.config import load_config

SECRET = "agent-test-secret"
IMAGES = ("localhost/workbay/python:3.11", "localhost/wb-test:base")
PODMAN_SOCKET = "/run/podman/podman.sock"


# --- infrastructure -------------------------------------------------------------------------
async def _connect_engine() -> Engine:
    try:
        return await Engine.connect(engine_candidates(""))
    except EngineUnreachable:
        if not shutil.which("podman") or os.environ.get("DOCKER_HOST"):
            raise
    # No engine answers yet: start Podman's API service the way `make setup` does.
    os.makedirs(os.path.dirname(PODMAN_SOCKET), exist_ok=True)
    subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{PODMAN_SOCKET}"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while True:
        try:
            return await Engine.connect(engine_candidates(""))
        except EngineUnreachable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
async def engine():
    try:
        eng = await _connect_engine()
    except EngineUnreachable as e:
        pytest.fail(f"no container engine (make setup starts one): {e}")
    yield eng
    await eng.close()


@pytest.fixture(scope="module")
async def image(engine) -> str:
    for name in IMAGES:
        if await engine.inspect_image(name) is not None:
            return name
    pytest.fail(f"none of the kernel images {IMAGES} is built (make setup builds them)")


class ManagerStub:
    """Records what the agent sends to the manager's internal API."""

    def __init__(self) -> None:
        self.heartbeats: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.unauthorized = 0
        self.changed = asyncio.Event()
        self.app = FastAPI()

        @self.app.post("/internal/agents/heartbeat")
        async def heartbeat(request: Request):
            if request.headers.get("X-Workbay-Secret") != SECRET:
                self.unauthorized += 1
                return {"ok": False}
            self.heartbeats.append(await request.json())
            self.changed.set()
            return {"ok": True}

        @self.app.post("/internal/agents/events")
        async def events(request: Request):
            if request.headers.get("X-Workbay-Secret") != SECRET:
                self.unauthorized += 1
                return {"ok": False}
            body = await request.json()
            for ev in body["events"]:
                self.events.append({**ev, "agent_id": body["agent_id"]})
            self.changed.set()
            return {"ok": True}

    def find(self, name: str, kernel_id: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["name"] == name and
                     e["kernel_id"] == kernel_id), None)

    async def wait_event(self, name: str, kernel_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (ev := self.find(name, kernel_id)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = [(e["name"], e["kernel_id"]) for e in self.events]
                raise AssertionError(f"no {name} event for {kernel_id}; got {got}")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return ev

    async def wait_heartbeat(self, pred, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for hb in reversed(self.heartbeats):
                if pred(hb):
                    return hb
            if time.monotonic() > deadline:
                raise AssertionError("no matching heartbeat")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1)


async def _serve(app, port: int) -> tuple[uvicorn.Server, asyncio.Task]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


async def _shutdown(server: uvicorn.Server, task: asyncio.Task) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 30)


class AgentHarness:
    def __init__(self, config, stub: ManagerStub) -> None:
        self.config = config
        self.stub = stub
        self.url = f"http://127.0.0.1:{config.agent.port}"
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task | None = None
        self.app = None
        self.client = AgentClient(self.url, SECRET)

    @property
    def agent(self):
        return self.app.state.agent

    async def start(self) -> None:
        self.app = create_app(self.config)
        self.server, self.task = await _serve(self.app, self.config.agent.port)
        deadline = time.monotonic() + 30
        while not (await self.client.info())["engine"]["available"]:
            assert time.monotonic() < deadline, "the agent did not reach the engine"
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await _shutdown(self.server, self.task)


@pytest.fixture(scope="module")
async def stub():
    s = ManagerStub()
    port = free_port()
    server, task = await _serve(s.app, port)
    s.url = f"http://127.0.0.1:{port}"
    yield s
    await _shutdown(server, task)


@pytest.fixture(scope="module")
async def agent(engine, image, stub, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("agent")
    config = load_config(
        data_dir=data_dir, secrets={"cluster": SECRET},
        # Host ports from a range of its own: when the engine picks them, kernels created at the
        # same moment (or another test's listener) can take the same port ("address already in use").
        agent={"port": free_port(), "manager_url": stub.url, "id": f"test-{uuid.uuid4().hex[:8]}",
               "port_range": host_port_range(),
               "heartbeat_interval": 0.5, "poll_interval": 0.3, "stats_interval": 2,
               "stop_timeout": 3, "slots": {"mem": "4g"},
               "simulated_devices": [{"slot": "cuda.device", "count": 2, "memory": "16g"}]})
    h = AgentHarness(config, stub)
    await h.start()
    yield h
    with contextlib.suppress(Exception):
        for k in await h.client.list_kernels():
            await h.client.destroy_kernel(k["kernel_id"], forced=True)
    await h.stop()
    await h.client.close()
    # Whatever a failed test left behind.
    for c in await engine.list_containers({"ai.backend.agent-id": config.agent.id}):
        await engine.remove(c["Id"])


def session_request(image: str, session_type: str = "interactive", n: int = 1,
                    cpu: str = "1", **extra: Any) -> dict[str, Any]:
    sid = uuid.uuid4().hex
    kernels = []
    for i in range(n):
        role, idx = ("main", 1) if i == 0 else ("sub", i)
        kernels.append({"kernel_id": uuid.uuid4().hex, "cluster_role": role, "cluster_idx": idx,
                        "resource_slots": {"cpu": cpu, "mem": "256m"},
                        "resource_opts": {"shmem": "32m"}})
    return {"session_id": sid, "session_name": f"s-{sid[:6]}", "session_type": session_type,
            "owner_access_key": "AKTEST", "image": image, "kernels": kernels, **extra}


async def run_code(client: AgentClient, kid: str, code: str) -> str:
    result = await client.execute(kid, "query", code)
    while result["status"] == "continued":
        result = await client.execute(kid, "continue", run_id=result["runId"])
    assert result["status"] == "finished", result
    out = "".join(d for t, d in result["console"] if t == "stdout")
    err = "".join(d for t, d in result["console"] if t == "stderr")
    assert result["exitCode"] == 0, err
    return out


# --- tests ----------------------------------------------------------------------------------
async def test_rpc_requires_the_cluster_secret(agent):
    async with httpx.AsyncClient(base_url=agent.url) as anon:
        assert (await anon.get("/healthz")).status_code == 200
        for method, path in [("GET", "/v1/info"), ("GET", "/v1/kernels"), ("GET", "/"),
                             ("POST", "/v1/kernels"), ("GET", "/v1/nowhere")]:
            r = await anon.request(method, path)
            assert r.status_code == 401, path
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["type"].endswith("/auth-failed")
        r = await anon.get("/v1/info", headers={"X-Workbay-Secret": "wrong"})
        assert r.status_code == 401


async def test_heartbeat_reports_capacity(agent, stub):
    hb = await stub.wait_heartbeat(lambda h: h["id"] == agent.config.agent.id)
    assert hb["addr"] == agent.url
    assert hb["region"] == "local" and hb["resource_group"] == "default"
    assert hb["architecture"] in ("x86_64", "aarch64")
    assert hb["slots"]["mem"] == str(4 * 2**30)
    assert hb["slots"]["cpu"] == str(len(os.sched_getaffinity(0)))
    assert hb["slots"]["cuda.device"] == "2"
    assert hb["accelerators"][0]["slot"] == "cuda.device"
    assert len(hb["accelerators"][0]["devices"]) == 2
    assert isinstance(hb["images"], list) and isinstance(hb["kernels"], list)
    assert stub.unauthorized == 0


async def test_bad_requests_change_nothing(agent, image):
    c = agent.client
    before = await c.info()
    req = session_request(image)
    req["kernels"][0]["resource_slots"]["mem"] = "64g"
    with pytest.raises(AgentError) as e:
        await c.create_kernels(req)
    assert e.value.status == 409 and e.value.type.endswith("/insufficient-resource")
    req = session_request(image)
    req["kernels"][0]["resource_slots"]["tpu.device"] = "1"
    with pytest.raises(AgentError) as e:
        await c.create_kernels(req)
    assert e.value.status == 400
    req = session_request(image)
    req["kernels"][0]["resource_opts"] = {"shmem": "1g"}  # more than mem
    with pytest.raises(AgentError) as e:
        await c.create_kernels(req)
    assert e.value.status == 400 and "shmem" in e.value.msg
    with pytest.raises(AgentError) as e:
        await c.create_kernels({"session_id": "x", "image": image, "kernels": []})
    assert e.value.status == 400 and e.value.type.endswith("/invalid-api-params")
    with pytest.raises(AgentError) as e:
        await c.execute("no-such-kernel", "query", "1")
    assert e.value.status == 404
    after = await c.info()
    assert after["occupied"] == before["occupied"] and after["kernels"] == before["kernels"]


async def test_interactive_kernel_lifecycle(agent, stub, image, engine, tmp_path):
    c = agent.client
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host")
    req = session_request(
        image, environ={"MY_VAR": "my value", "OMP_NUM_THREADS": "3"},
        mounts=[{"source": str(shared), "target": "/data", "read_only": True}],
        bootstrap_script="echo booted > ~/boot.txt\nsleep 0.5\n",
        dotfiles=[{"path": ".myrc", "data": "alias ll='ls -l'\n", "perm": "600"}],
        preopen_ports=[8080])
    req["kernels"][0]["resource_slots"]["cuda.device"] = "1"
    kid = req["kernels"][0]["kernel_id"]
    created = await c.create_kernels(req)
    assert created[0]["status"] == "preparing"
    assert created[0]["allocations"]["cpu"]["cores"]
    # Resources are reserved as soon as the request is accepted.
    info = await c.info()
    assert info["occupied"]["cuda.device"] == "1" and kid in info["kernels"]

    started = await stub.wait_event("kernel_started", kid)
    assert stub.find("kernel_preparing", kid) is not None
    assert started["session_id"] == req["session_id"]
    preopen = next(sp for sp in started["service_ports"] if sp["name"] == "8080")
    assert preopen["protocol"] == "preopen" and preopen["host_ports"][0] > 0
    kernel = await c.get_kernel(kid)
    assert kernel["status"] == "running" and kernel["container_id"]
    cores = kernel["allocations"]["cpu"]["cores"]

    out = await run_code(c, kid, "print(6*7)")
    assert out == "42\n"
    # The interpreter persists between queries.
    await run_code(c, kid, "x = 20")
    assert await run_code(c, kid, "print(x + 1)") == "21\n"

    probe = r'''
import os, pwd, json
def cg(*names):
    for n in names:
        try:
            return open(n).read().strip()
        except OSError:
            pass
st = os.statvfs("/dev/shm")
print(json.dumps({
  "uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name, "cwd": os.getcwd(),
  "home": os.environ.get("HOME"),
  "mem": cg("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
  "affinity": sorted(os.sched_getaffinity(0)),
  "shm": st.f_blocks * st.f_frsize,
  "env": {k: v for k, v in os.environ.items() if k.startswith(("BACKENDAI_", "CUDA_", "MY_",
          "OMP_", "OPENBLAS_", "WORKBAY_"))},
  "data": open("/data/hello.txt").read(),
  "data_writable": os.access("/data", os.W_OK),
  "boot": open(os.path.expanduser("~/boot.txt")).read(),
  "myrc": oct(os.stat(os.path.expanduser("~/.myrc")).st_mode & 0o777),
  "id_container": os.path.exists(os.path.expanduser("~/id_container")),
  "sudoers": os.path.exists("/etc/sudoers.d/01-workbay-work"),
  "environ_txt": "MY_VAR=my value" in open("/home/config/environ.txt").read(),
}))
'''
    import json

    facts = json.loads(await run_code(c, kid, probe))
    assert facts["uid"] == 1000 and facts["user"] == "work"
    assert facts["cwd"] == "/home/work" and facts["home"] == "/home/work"
    assert int(facts["mem"]) == 256 * 2**20
    assert facts["affinity"] == cores
    assert facts["shm"] == 32 * 2**20
    env = facts["env"]
    assert env["MY_VAR"] == "my value"
    assert env["OMP_NUM_THREADS"] == "3"          # the user's value wins
    assert env["OPENBLAS_NUM_THREADS"] == "1"     # default: the cpu count
    assert env["CUDA_VISIBLE_DEVICES"] == "0"     # simulated device
    assert env["BACKENDAI_KERNEL_ID"] == kid
    assert env["BACKENDAI_SESSION_ID"] == req["session_id"]
    assert env["BACKENDAI_CLUSTER_ROLE"] == "main" and env["BACKENDAI_CLUSTER_HOST"] == "main1"
    assert env["BACKENDAI_CLUSTER_SIZE"] == "1" and env["BACKENDAI_PREOPEN_PORTS"] == "8080"
    assert facts["data"] == "from the host" and facts["data_writable"] is False
    assert facts["boot"] == "booted\n"
    assert facts["myrc"] == "0o600"
    assert facts["id_container"] is True
    assert facts["sudoers"] is False and facts["environ_txt"] is True

    # stderr and exceptions
    result = await c.execute(kid, "query", "import sys; print('oops', file=sys.stderr); 1/0")
    assert result["status"] == "finished" and result["exitCode"] == 1
    err = "".join(d for t, d in result["console"] if t == "stderr")
    assert "oops" in err and "ZeroDivisionError" in err

    # input(): waiting-input, then mode=input
    result = await c.execute(kid, "query", "name = input('name? ')\nprint('hi', name)")
    assert result["status"] == "waiting-input", result
    assert result["console"] == [["stdout", "name? "]]
    result = await c.execute(kid, "input", "bob", run_id=result["runId"])
    assert result["status"] == "finished" and result["console"] == [["stdout", "hi bob\n"]]

    # a long run comes back in "continued" chunks
    result = await c.execute(kid, "query", "import time\nprint('a', flush=True)\n"
                             "time.sleep(1.5)\nprint('b')", flush_timeout=0.3)
    assert result["status"] == "continued" and result["exitCode"] is None
    console = list(result["console"])
    while result["status"] == "continued":
        result = await c.execute(kid, "continue", run_id=result["runId"], flush_timeout=0.5)
        console += result["console"]
    assert result["status"] == "finished"
    assert "".join(d for _, d in console) == "a\nb\n"

    # interrupt a running query
    result = await c.execute(kid, "query", "import time\ntime.sleep(30)", flush_timeout=0.3)
    assert result["status"] == "continued"
    assert await c.interrupt(kid) is True
    result = await c.execute(kid, "continue", run_id=result["runId"], flush_timeout=10)
    assert result["status"] == "finished" and result["exitCode"] == 1
    assert "KeyboardInterrupt" in "".join(d for _, d in result["console"])

    # batch mode: shell commands as the user, exit code
    result = await c.execute(kid, "batch", options={"build": "echo building",
                                                    "exec": "echo running; id -un; exit 3"},
                             flush_timeout=10)
    assert result["status"] == "build-finished"
    result = await c.execute(kid, "continue", run_id=result["runId"], flush_timeout=10)
    assert result["status"] == "finished" and result["exitCode"] == 3
    assert result["console"] == [["stdout", "running\nwork\n"]]

    # logs and stats
    logs = await c.logs(kid)
    assert "kernel ready" in logs
    stats = await c.stats(kid)
    assert int(stats["mem"]["current"]) > 0 and stats["mem"]["capacity"] == str(256 * 2**20)
    assert stats["cpu_util"]["current"] is not None

    scratch = Path(agent.config.data_dir).resolve() / "scratch" / kid
    assert (scratch / "boot.txt").exists()
    container_id = kernel["container_id"]
    result = await c.destroy_kernel(kid, reason="user-requested")
    assert result["reason"] == "user-requested"
    ev = await stub.wait_event("kernel_terminated", kid)
    assert ev["reason"] == "user-requested"
    assert await engine.inspect(container_id) is None
    assert not scratch.exists()
    info = await c.info()
    assert kid not in info["kernels"] and info["occupied"]["cuda.device"] == "0"
    with pytest.raises(AgentError) as e:
        await c.get_kernel(kid)
    assert e.value.status == 404
    # The logs of a dead kernel are kept for a while.
    assert "kernel ready" in await c.logs(kid)


async def test_batch_kernels_report_exit_codes(agent, stub, image):
    c = agent.client
    # Fractional cpu: three kernels share the cores of a small machine.
    ok = session_request(image, "batch", cpu="0.5", startup_command="echo batch-ok; exit 0")
    bad = session_request(image, "batch", cpu="0.5",
                          startup_command="echo batch-bad >&2; exit 3")
    slow = session_request(image, "batch", cpu="0.5", startup_command="sleep 30",
                           batch_timeout=1)
    for req in (ok, bad, slow):
        await c.create_kernels(req)
    kok, kbad, kslow = (r["kernels"][0]["kernel_id"] for r in (ok, bad, slow))
    ev = await stub.wait_event("kernel_terminated", kok)
    assert ev["exit_code"] == 0 and ev["reason"] == "task-finished"
    assert stub.find("kernel_started", kok) is not None
    ev = await stub.wait_event("kernel_terminated", kbad)
    assert ev["exit_code"] == 3 and ev["reason"] == "task-failed"
    assert "batch-bad" in await c.logs(kbad)
    assert "batch-ok" in await c.logs(kok)
    ev = await stub.wait_event("kernel_terminated", kslow, timeout=30)
    assert ev["reason"] == "batch-timeout" and ev["exit_code"] == 124
    info = await c.info()
    assert not {kok, kbad, kslow} & set(info["kernels"])


async def test_failed_start_is_reported(agent, stub):
    c = agent.client
    req = session_request("localhost/workbay/no-such-image:0", pull_image=False)
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    ev = await stub.wait_event("kernel_terminated", kid)
    assert ev["reason"] == "failed-to-start" and "no-such-image" in ev["msg"]
    assert kid not in (await c.info())["kernels"]


async def test_restart_keeps_scratch(agent, stub, image):
    c = agent.client
    req = session_request(image)
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    await stub.wait_event("kernel_started", kid)
    await run_code(c, kid, "open('/home/work/keep.txt', 'w').write('kept'); x = 1")
    before = (await c.get_kernel(kid))["container_id"]
    k = await c.restart_kernel(kid)
    assert k["status"] == "restarting"
    done = await c.wait_kernels([kid], timeout=30)
    assert done[kid]["status"] == "running" and done[kid]["container_id"] != before
    assert any(e["name"] == "kernel_restarting" and e["kernel_id"] == kid for e in stub.events)
    assert await run_code(c, kid, "print(open('/home/work/keep.txt').read())") == "kept\n"
    assert await run_code(c, kid, "print('x' in globals())") == "False\n"
    await c.destroy_kernel(kid)


async def test_agent_restart_readopts_running_kernels(agent, stub, image):
    c = agent.client
    req = session_request(image)
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    await stub.wait_event("kernel_started", kid)
    await run_code(c, kid, "y = 5")
    cores = (await c.get_kernel(kid))["allocations"]["cpu"]["cores"]
    await agent.stop()
    await agent.start()  # a new agent process (same id and data dir)
    k = await c.get_kernel(kid)
    assert k["adopted"] is True and k["status"] == "running"
    assert k["allocations"]["cpu"]["cores"] == cores
    info = await c.info()
    assert kid in info["kernels"] and info["occupied"]["mem"] == str(256 * 2**20)
    # Same container, same interpreter.
    assert await run_code(c, kid, "print(y)") == "5\n"
    hb = await stub.wait_heartbeat(lambda h: kid in h["kernels"] and
                                   h["started_at"] == info["started_at"])
    assert hb["occupied"]["cpu"] == "1"
    await c.destroy_kernel(kid)
    ev = await stub.wait_event("kernel_terminated", kid)
    assert ev["reason"] == "user-requested"


async def test_dead_container_is_reported(agent, stub, image, engine):
    c = agent.client
    req = session_request(image)
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    await stub.wait_event("kernel_started", kid)
    cid = (await c.get_kernel(kid))["container_id"]
    await engine.kill(cid)  # the container dies under the agent's feet
    ev = await stub.wait_event("kernel_terminated", kid)
    assert ev["reason"] == "self-terminated" and ev["exit_code"] not in (None, 0)


async def test_cluster_network_dns(agent, stub, image):
    c = agent.client
    net = f"wb-test-{uuid.uuid4().hex[:8]}"
    assert (await c.create_network(net, "cluster-session"))["created"] is True
    assert (await c.create_network(net, "cluster-session"))["created"] is False
    keypair = generate_ssh_keypair()  # the manager makes one per cluster session
    req = session_request(image, n=2, network=net, cluster_ssh_keypair=keypair)
    main_id, sub_id = (k["kernel_id"] for k in req["kernels"])
    await c.create_kernels(req)
    await stub.wait_event("kernel_started", main_id)
    await stub.wait_event("kernel_started", sub_id)
    out = await run_code(c, main_id, "import socket, os\n"
                         "print(socket.gethostbyname('sub1'))\n"
                         "print(socket.gethostname())\n"
                         "print(os.environ['BACKENDAI_CLUSTER_HOSTS'])\n"
                         "print(os.environ['BACKENDAI_CLUSTER_SIZE'])\n"
                         "print(sorted(os.listdir(os.path.expanduser('~/.ssh'))))\n"
                         "print(open('/etc/ssh/ssh_config.d/workbay-cluster.conf').read())")
    sub_ip, hostname, hosts, size, home_ssh, ssh_config = out.split("\n", 5)
    assert sub_ip.count(".") == 3
    assert hostname == "main1" and hosts == "main1,sub1" and size == "2"
    # the cluster's client config and key live outside ~/.ssh (the user's, maybe persistent)
    assert "Host main1 sub1" in ssh_config and "IdentityFile /etc/workbay/ssh/id_cluster" in ssh_config
    assert home_ssh == "[]"
    out = await run_code(c, sub_id, "import socket, os\n"
                         "print(socket.gethostbyname('main1'))\n"
                         "print(os.environ['BACKENDAI_CLUSTER_ROLE'], "
                         "os.environ['BACKENDAI_CLUSTER_IDX'], "
                         "os.environ['BACKENDAI_CLUSTER_LOCAL_RANK'])\n"
                         f"print({keypair['public_key']!r} in "
                         "open('/etc/workbay/ssh/authorized_keys').read())")
    main_ip, role, authorized = out.strip().split("\n")
    assert main_ip.count(".") == 3 and main_ip != sub_ip
    assert role == "sub 1 1" and authorized == "True"
    sshd = next((sp for sp in (await c.get_kernel(sub_id))["service_ports"]
                 if sp["name"] == "sshd"), None)
    if sshd is not None:  # an image with openssh: passwordless `ssh sub1` from main1
        result = await c.execute(main_id, "batch", options={"exec": "ssh sub1 hostname"},
                                 flush_timeout=20)
        assert result["exitCode"] == 0, result["console"]
        assert result["console"] == [["stdout", "sub1\n"]]
    await c.destroy_kernel(main_id)
    assert await agent.agent.engine.network_exists(net)  # sub1 still uses it
    await c.destroy_kernel(sub_id)
    # the session's network goes with its last kernel on the node (no leaks); destroying it
    # afterwards says it is gone
    assert not await agent.agent.engine.network_exists(net)
    with pytest.raises(AgentError) as e:
        await c.destroy_network(net)
    assert e.value.status == 404


async def test_sudo_flag_and_custom_uid(agent, stub, image):
    c = agent.client
    req = session_request(image, uid=2001, gid=2002, sudo=True)
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    await stub.wait_event("kernel_started", kid)
    out = await run_code(c, kid, "import os, shutil, subprocess\n"
                         "st = os.stat('/home/work')\n"
                         "print(os.getuid(), os.getgid(), st.st_uid, st.st_gid)\n"
                         "print(os.path.exists('/etc/sudoers.d/01-workbay-work'))\n"
                         "print(subprocess.run(['sudo', '-n', 'id', '-u'], capture_output=True,"
                         " text=True).stdout.strip() if shutil.which('sudo') else 'no-sudo')")
    ids, sudoers, sudo_uid = out.strip().split("\n")
    assert ids == "2001 2002 2001 2002"
    assert sudoers == "True" and sudo_uid in ("0", "no-sudo")
    await c.destroy_kernel(kid)


async def test_runner_on_python39_image(agent, stub, engine):
    """The runner is stdlib-only Python >= 3.9: the Debian 11 image runs it too."""
    image = "localhost/workbay/python:3.9"
    if await engine.inspect_image(image) is None:
        pytest.fail(f"{image} is not built (make setup builds it: workbay image build python:3.9)")
    c = agent.client
    req = session_request(image)
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    await stub.wait_event("kernel_started", kid, timeout=60)
    assert await run_code(c, kid, "import sys; print(sys.version_info[:2] >= (3, 9), 6*7)") == \
        "True 42\n"
    await c.destroy_kernel(kid)


async def test_memory_limit_is_enforced(agent, stub, image):
    """A batch task that allocates more than its 256 MiB is killed (exit code 137)."""
    c = agent.client
    req = session_request(image, "batch", cpu="0.5",
                          startup_command="python3 -c \"b = bytearray(600 * 2**20)\"")
    kid = req["kernels"][0]["kernel_id"]
    await c.create_kernels(req)
    ev = await stub.wait_event("kernel_terminated", kid)
    assert ev["reason"] == "task-failed" and ev["exit_code"] == 137, ev
