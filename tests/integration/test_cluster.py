"""Workbay as a real cluster: every component in its own process (``workbay manager``,
``webserver``, ``storage-proxy``, ``app-proxy``, ``agent``), all from ONE workbay.toml, with
PostgreSQL and Redis, each listening on this node's network address only (nothing on loopback),
so a component that reached another over 127.0.0.1 — or a URL that named the wrong host — fails
here.  Sessions run on the separate agent process, files go through the storage-proxy process,
apps through the app-proxy process to the containers' published ports on the node address, the
webserver process serves login and /func, and the manager survives a restart."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import REDIS_URL, throwaway_db
from tests.support.sessions import (
    ADMIN_PASSWORD,
    IMAGE,
    PODMAN_SOCKET,
    containers,
    engine_problem,
    host_port_range,
    remove_containers,
    wait_for,
)
from workbay.client import folders, transfer
from workbay.client.sdk import APIError, Client

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
WORKBAY = ROOT / ".venv" / "bin" / "workbay"
BAI_PYTHON = ROOT / ".venv-bai" / "bin" / "python"
USER_PASSWORD = "Clust3r!pass-word"
COMPONENTS = ("storage-proxy", "app-proxy", "manager", "agent", "webserver")
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


def node_address() -> str:
    """This node's non-loopback address: the source address of a route off the machine (a UDP
    "connect" sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))
        address = sock.getsockname()[0]
    if address.startswith("127."):
        pytest.fail(f"this node has no non-loopback address (got {address}); the cluster test needs one")
    return address


def free_node_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def redis_url_of_its_own() -> str:
    """The test Redis with a database number of its own (pub/sub channels are server-wide, but
    rate-limit keys stay apart)."""
    base = REDIS_URL.rsplit("/", 1)[0]
    return f"{base}/{random.randrange(1, 15)}"  # 15 is test_manager_ratelimit's


def cluster_toml(node: str, data_dir: Path, db_url: str, ports: dict[str, int], agent_id: str) -> str:
    secrets = {n: uuid.uuid4().hex + uuid.uuid4().hex for n in ("cluster", "storage", "session", "appproxy")}
    manager_url = f"http://{node}:{ports['manager']}"
    return f"""\
data_dir = "{data_dir}"

[db]
url = "{db_url}"

[redis]
url = "{redis_url_of_its_own()}"

[secrets]
{chr(10).join(f'{k} = "{v}"' for k, v in secrets.items())}

[manager]
host = "{node}"
port = {ports['manager']}
scheduler_interval = 0.5
reconcile_interval = 1.0
trusted_proxies = ["127.0.0.0/8", "::1/128", "{node}/32"]

[webserver]
host = "{node}"
port = {ports['webserver']}
manager_url = "{manager_url}"

[storage]
host = "{node}"
client_port = {ports['storage-client']}
manager_port = {ports['storage-manager']}

[appproxy]
host = "{node}"
port = {ports['app-proxy']}

[agent]
id = "{agent_id}"
host = "{node}"
port = {ports['agent']}
manager_url = "{manager_url}"
docker_host = "unix://{PODMAN_SOCKET}"
container_host = "{node}"
port_range = "{host_port_range()}"
heartbeat_interval = 1.0
poll_interval = 0.5
stats_interval = 2.0
slots = {{ cpu = "2", mem = "4g" }}

[logging]
level = "INFO"
"""


class Cluster:
    """The five component processes, their shared config file and logs."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.node = node_address()
        self.ports = {name: free_node_port(self.node) for name in
                      ("manager", "webserver", "storage-client", "storage-manager", "app-proxy", "agent")}
        self.agent_id = f"wbcluster-{uuid.uuid4().hex[:8]}"
        self.config_path = tmp / "workbay.toml"
        self.config_path.write_text(cluster_toml(self.node, tmp / "data", db_url, self.ports, self.agent_id))
        self.env = {**os.environ, "WORKBAY_ADMIN_PASSWORD": ADMIN_PASSWORD}
        # the file alone configures the cluster: no WORKBAY_* setting of the test runner leaks in
        for key in [k for k in self.env if k.startswith("WORKBAY_") and k != "WORKBAY_ADMIN_PASSWORD"]:
            del self.env[key]
        self.procs: dict[str, subprocess.Popen] = {}
        self.clients: list[Client] = []
        self.admin: Client | None = None

    def secret(self, name: str) -> str:
        return tomllib.loads(self.config_path.read_text())["secrets"][name]

    def url(self, port_name: str) -> str:
        return f"http://{self.node}:{self.ports[port_name]}"

    @property
    def manager_url(self) -> str:
        return self.url("manager")

    def health_url(self, component: str) -> str:
        return self.url({"storage-proxy": "storage-client"}.get(component, component)) + "/healthz"

    def log(self, component: str) -> Path:
        return self.tmp / f"{component}.log"

    def log_tail(self, component: str, chars: int = 3000) -> str:
        path = self.log(component)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def db_upgrade(self) -> None:
        done = subprocess.run([str(WORKBAY), "db", "upgrade", "--config", str(self.config_path)],
                              env=self.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]

    def spawn(self, component: str) -> None:
        with open(self.log(component), "ab") as log:
            self.procs[component] = subprocess.Popen(
                [str(WORKBAY), component, "--config", str(self.config_path)], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True)

    async def wait_healthy(self, component: str, timeout: float = 90) -> None:
        proc = self.procs[component]
        urls = [self.health_url(component)]
        if component == "storage-proxy":
            urls.append(self.url("storage-manager") + "/healthz")
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"{component} exited with {proc.returncode}:\n{self.log_tail(component)}")
                try:
                    statuses = [(await http.get(u)).status_code for u in urls]
                    if statuses == [200] * len(urls):
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{component} not healthy after {timeout}s:\n{self.log_tail(component)}")
                await asyncio.sleep(0.3)

    def stop(self, component: str, grace: float = 20) -> int | None:
        proc = self.procs.pop(component, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    async def start(self) -> None:
        await asyncio.to_thread(self.db_upgrade)
        for component in COMPONENTS:
            self.spawn(component)
        for component in COMPONENTS:
            await self.wait_healthy(component)
        login = (await self.client().post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": "admin@workbay.local",
            "password": ADMIN_PASSWORD}))["data"]
        self.admin = self.client(login["access_key"], login["secret_key"])
        await self.wait_agent_ready()

    async def wait_agent_ready(self, timeout: float = 90) -> dict[str, Any]:
        async def ready():
            agents = {a["id"]: a for a in (await self.admin.get("/admin/agents"))["items"]}
            images = (await self.admin.get("/images", params={"installed": "true"}))["items"]
            on = {aid for i in images if i["name"] == IMAGE for aid in i["installed_on"]}
            agent = agents.get(self.agent_id, {})
            return agent if agent.get("status") == "ALIVE" and self.agent_id in on else None
        return await wait_for(ready, timeout, "the agent process is ALIVE with the kernel image")

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Client:
        c = Client(self.manager_url, access_key, secret_key, timeout=180)
        self.clients.append(c)
        return c

    async def login(self, email: str, password: str) -> Client:
        data = (await self.client().post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": email, "password": password}))["data"]
        return self.client(data["access_key"], data["secret_key"])

    async def terminate_all(self) -> None:
        live = (await self.admin.get("/sessions", params={"status": "live", "all": "true", "limit": 1000}))["items"]
        for s in live:
            try:
                await self.admin.delete(f"/session/{s['id']}", params={"forced": "true"})
            except APIError:
                pass
        for s in live:
            async def gone(sid=s["id"]):
                return (await self.admin.get(f"/session/{sid}"))["status"] in ("TERMINATED", "CANCELLED", "ERROR")
            await wait_for(gone, 60, f"session {s['id']} ends")

    async def close(self) -> None:
        try:
            if self.admin is not None and "manager" in self.procs and "agent" in self.procs:
                await self.terminate_all()
        finally:
            for c in self.clients:
                await c.close()
            for component in reversed(COMPONENTS):
                self.stop(component)
            remove_containers("ai.backend.agent-id", self.agent_id)


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory):
    problem = engine_problem()
    if problem:
        pytest.fail(f"real containers are needed: {problem}")
    tmp = tmp_path_factory.mktemp("cluster")
    async with throwaway_db("postgresql", tmp) as db_url:
        c = Cluster(tmp, db_url)
        try:
            await c.start()
            yield c
        finally:
            await c.close()


@pytest.fixture(scope="module")
async def user(cluster):
    email = f"cluster-{uuid.uuid4().hex[:6]}@example.test"
    projects = (await cluster.admin.get("/admin/projects", params={"domain": "default"}))["items"]
    default = next(p["id"] for p in projects if p["name"] == "default")
    await cluster.admin.post("/admin/users", json={"email": email, "username": email.split("@")[0],
                                                   "password": USER_PASSWORD, "project_ids": [default]})
    return email, await cluster.login(email, USER_PASSWORD)


@pytest.fixture(scope="module")
async def folder(user, tmp_path_factory):
    """A folder with a file uploaded (tus, through the SDK) to the storage-proxy process."""
    _, client = user
    name = f"data-{uuid.uuid4().hex[:6]}"
    await folders.create_folder(client, name)
    local = tmp_path_factory.mktemp("upload")
    source = local / "note.txt"
    source.write_text("over the network\n")
    await folders.upload(client, name, [source], state=transfer.StateFile(local / "uploads.json"))
    return name, source.name


@pytest.fixture(scope="module")
async def session(cluster, user, folder):
    _, client = user
    created = await client.post("/session", json={
        "image": IMAGE, "name": f"cl-{uuid.uuid4().hex[:6]}",
        "config": {"resources": {"cpu": 1, "mem": "768m"}, "mounts": [folder[0]]}})
    assert created["status"] == "RUNNING", created
    return created["sessionId"]


async def shell(client: Client, sid: str, command: str) -> str:
    result = (await client.post(f"/session/{sid}", json={
        "mode": "batch", "runId": "", "code": "", "options": {"exec": command}}))["result"]
    while result["status"] in ("continued", "clean-finished", "build-finished"):
        result = (await client.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                              "code": ""}))["result"]
    return "".join(d for t, d in result["console"] if t == "stdout")


async def test_nothing_listens_on_loopback(cluster):
    """Every component bound the node address alone, so everything below crossed the network."""
    for name, port in cluster.ports.items():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{name} answers on 127.0.0.1:{port}"


async def test_session_runs_on_the_agent_process_at_the_node_address(cluster, user, session):
    _, client = user
    info = await client.get(f"/session/{session}")
    assert info["status"] == "RUNNING"
    agents = (await cluster.admin.get("/admin/agents"))["items"]
    agent = next(a for a in agents if a["id"] == cluster.agent_id)
    assert agent["addr"] == cluster.url("agent"), agent  # the manager calls it on the node address
    assert (await shell(client, session, "echo $((6*7))")).strip() == "42"
    # the container is the agent process's, and its published ports are bound to the node address
    # (the agent's container_host), not 127.0.0.1 and not every interface
    own = containers("ai.backend.session-id", session)
    assert own and all(c["Labels"]["ai.backend.agent-id"] == cluster.agent_id for c in own), own
    bindings = json.loads(subprocess.run(["podman", "inspect", own[0]["Id"], "--format",
                                          "{{json .HostConfig.PortBindings}}"],
                                         capture_output=True, text=True, timeout=60, check=True).stdout)
    host_ips = {b["HostIp"] for spec in bindings.values() for b in spec or []}
    assert host_ips == {cluster.node}, bindings
    # and the agent reports the node address as the kernel's host (what the manager hands on)
    kernel_id = own[0]["Labels"]["ai.backend.kernel-id"]
    async with httpx.AsyncClient(headers={"X-Workbay-Secret": cluster.secret("cluster")}) as http:
        kernel = (await http.get(f"{cluster.url('agent')}/v1/kernels/{kernel_id}")).json()
    assert kernel["kernel_host"] == cluster.node, kernel


async def test_uploaded_file_is_read_inside_the_session(cluster, user, folder, session):
    _, client = user
    name, uploaded = folder
    # the manager hands out the storage-proxy's client URL on the node address
    grant = await folders.request_download(client, name, uploaded)
    assert grant["url"].startswith(cluster.url("storage-client") + "/"), grant
    assert uploaded in {f["name"] for f in await folders.list_files(client, name)}
    assert await shell(client, session, f"cat /home/work/{name}/{uploaded}") == "over the network\n"


async def test_apps_through_the_app_proxy_process(cluster, user, session, tmp_path):
    _, client = user
    opened = await client.post(f"/session/{session}/start-service", json={"app": "jupyter"})
    assert opened["url"].startswith(f"http://{cluster.node}:{opened['port']}/"), opened
    async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
        page = await browser.get(opened["url"])
        assert page.status_code == 200 and "Jupyter" in page.text
        assert (await browser.get(f"http://{cluster.node}:{opened['port']}/api/status")).status_code == 200
    async with httpx.AsyncClient(timeout=30) as stranger:
        assert (await stranger.get(f"http://{cluster.node}:{opened['port']}/api/status")).status_code == 403
    # the app-proxy process carries the circuit to the container's port on the node address
    async with httpx.AsyncClient(headers={"X-Workbay-Secret": cluster.secret("appproxy")}) as http:
        circuits = (await http.get(cluster.url("app-proxy") + "/v1/circuits",
                                   params={"session_id": session})).json()["circuits"]
    assert circuits and {c["target_host"] for c in circuits} == {cluster.node}, circuits

    ssh = await client.post(f"/session/{session}/start-service", json={"app": "sshd"})
    assert ssh["protocol"] == "tcp" and ssh["host"] == cluster.node
    key = tmp_path / "id_container"
    key.write_text(await shell(client, session, "cat /home/work/id_container"))
    os.chmod(key, 0o600)
    out = await asyncio.to_thread(subprocess.run, ["ssh", *SSH_OPTS, "-i", str(key), "-p", str(ssh["port"]),
                                                   f"work@{cluster.node}", "echo $((6*7))"],
                                  capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr


async def test_webserver_process_logs_in_and_lists_sessions(cluster, user, session):
    email, _ = user
    async with httpx.AsyncClient(base_url=cluster.url("webserver"), timeout=60) as web:
        assert (await web.get("/func/user/me")).status_code == 401
        login = await web.post("/server/login", json={"username": email, "password": USER_PASSWORD})
        assert login.json()["authenticated"] is True, login.text
        listed = await web.get("/func/sessions", params={"status": "live"})
        assert listed.status_code == 200, listed.text
        assert session in {s["id"] for s in listed.json()["items"]}


async def test_manager_restart_keeps_the_session_usable(cluster, user, session):
    _, client = user
    assert cluster.stop("manager") == 0, cluster.log_tail("manager")
    cluster.spawn("manager")
    await cluster.wait_healthy("manager")
    await cluster.wait_agent_ready()
    info = await client.get(f"/session/{session}")
    assert info["status"] == "RUNNING", info
    assert (await shell(client, session, "echo still-$((40+2))")).strip() == "still-42"


async def test_official_client_through_the_webserver_process(cluster, user, folder, session, tmp_path):
    """``backend.ai login`` (session mode) against the webserver process, then commands that go
    through its /func proxy to the manager process with the saved login cookie: a REST one
    (``vfolder info``) and a GraphQL one (``ps``, /admin/gql)."""
    assert BAI_PYTHON.exists(), (
        f"{BAI_PYTHON} is missing: the official client needs its own venv "
        "(python3 -m venv .venv-bai && .venv-bai/bin/pip install backend.ai-client==23.9.10 yarl==1.9.4)")
    email, _ = user
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BACKEND_ENDPOINT": cluster.url("webserver"),
           "BACKEND_ENDPOINT_TYPE": "session"}
    cli = [str(BAI_PYTHON.parent / "backend.ai")]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120)

    login = await asyncio.to_thread(run, "login", stdin=f"{email}\n{USER_PASSWORD}\n")
    assert "Login succeeded" in login.stdout + login.stderr, login.stdout + login.stderr
    info = await asyncio.to_thread(run, "vfolder", "info", folder[0])
    assert info.returncode == 0 and folder[0] in info.stdout, info.stdout + info.stderr
    name = (await user[1].get(f"/session/{session}"))["name"]
    ps = await asyncio.to_thread(run, "ps")
    assert ps.returncode == 0 and name in ps.stdout, ps.stdout + ps.stderr
