"""A real Workbay (manager + agent(s) over loopback HTTP, real Podman containers) for the compute
session tests: start/stop each component on its own so restarts can be exercised, SDK clients
for test actors, polling helpers, and a view of the engine's containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import free_port_base
from workbay.client.sdk import APIError, Client
from workbay.common.config import WorkbayConfig
from workbay.lite import LiteHandle, lite_config, start_in_thread

ADMIN_PASSWORD = "Adm1n!pass-word"
DEMO_PASSWORD = "Dem0!pass-word"
IMAGE = "localhost/workbay/python:3.11"
PODMAN_SOCKET = "/run/podman/podman.sock"
SMALL = {"cpu": 1, "mem": "256m"}


def host_port_range(size: int = 200) -> str:
    """A window of free ports below the kernel's ephemeral range (32768-)."""
    import random
    import socket

    for _ in range(100):
        lo = random.randrange(10000, 32000 - size, 50)
        ok = True
        for port in range(lo, lo + size, 7):  # a sample is enough
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return f"{lo}-{lo + size - 1}"
    raise RuntimeError("no free host port range")


def engine_problem() -> str | None:
    """Why real-container tests cannot run here (None when they can)."""
    if not shutil.which("podman"):
        return "podman is not installed"
    if not os.path.exists(PODMAN_SOCKET) and os.path.exists("tools/podman_service.sh"):
        subprocess.run(["bash", "tools/podman_service.sh"], check=False, capture_output=True, timeout=60)
    if not os.path.exists(PODMAN_SOCKET):
        return f"no Podman API socket at {PODMAN_SOCKET}"
    r = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, timeout=60)
    if r.returncode != 0:
        return f"the kernel image {IMAGE} is not built (make setup builds it)"
    return None


def containers(label: str, value: str) -> list[dict[str, Any]]:
    """Containers (running or not) carrying the label, as `podman ps -a` lists them."""
    out = subprocess.run(["podman", "ps", "-a", "--filter", f"label={label}={value}", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out or "[]")


def podman_exec(container: str, *cmd: str) -> str:
    return subprocess.run(["podman", "exec", container, *cmd], capture_output=True, text=True,
                          timeout=60, check=True).stdout


def remove_containers(label: str, value: str) -> None:
    for c in containers(label, value):
        subprocess.run(["podman", "rm", "-f", c["Id"]], capture_output=True, timeout=60)


class System:
    """Manager and agent(s) in separate lite handles sharing one data directory.

    ``agents`` > 1 starts that many agents, each with its own id (``wbtest-<base>-<i>``), RPC port,
    share of the cores, host port range and ``agent_slots`` capacity -- what ``workbay up
    --agents N`` does, with each agent in its own handle so they can be stopped one by one."""

    def __init__(self, data_dir: Path, agent_slots: dict[str, str] | None = None,
                 manager: dict[str, Any] | None = None, agent: dict[str, Any] | None = None,
                 demo: bool = True, agents: int = 1) -> None:
        os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        os.environ["WORKBAY_DEMO_PASSWORD"] = DEMO_PASSWORD
        self.data_dir = data_dir
        self.base = free_port_base(10 + agents)
        cfg = lite_config(data_dir, self.base)
        # Host ports for published container ports come from a range the agent manages: when the
        # engine picks them, containers created at the same moment can race for one port
        # ("bind: address already in use", the kernel fails to start).
        common = {"heartbeat_interval": 1.0, "poll_interval": 0.5, "stats_interval": 2.0,
                  "slots": agent_slots or {"cpu": "2", "mem": "4g"}, **(agent or {})}
        self.config = self.configure(cfg, manager=manager, agent={"id": f"wbtest-{self.base}", **common})
        if agents == 1:
            self.agent_configs = [self.configure(self.config, agent={"port_range": host_port_range()})]
        else:
            cores = sorted(os.sched_getaffinity(0))
            self.agent_configs = [self.configure(self.config, agent={
                "id": f"wbtest-{self.base}-{i + 1}", "port": self.config.agent.port + i,
                "cpu_set": [cores[i % len(cores)]], "port_range": host_port_range()})
                for i in range(agents)]
        self.agent_ids = [c.agent.id for c in self.agent_configs]
        self.agent_id = self.agent_ids[0]
        self.demo = demo
        self.manager_handle: LiteHandle | None = None
        self.agent_handles: dict[str, LiteHandle] = {}
        self.agents_started: set[str] = set()  # whose containers close() removes
        self.storage_handle: LiteHandle | None = None
        self.appproxy_handle: LiteHandle | None = None
        self.clients: list[Client] = []
        self.admin: Client | None = None

    @staticmethod
    def configure(cfg: WorkbayConfig, manager: dict[str, Any] | None = None,
                  agent: dict[str, Any] | None = None) -> WorkbayConfig:
        m = {"scheduler_interval": 0.5, "reconcile_interval": 1.0, **(manager or {})}
        return cfg.model_copy(update={"manager": cfg.manager.model_copy(update=m),
                                      "agent": cfg.agent.model_copy(update=agent or {})})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.manager.port}"

    # -- components ----------------------------------------------------------------------------
    def start_manager(self, **manager: Any) -> None:
        if manager:
            self.config = self.configure(self.config, manager=manager)
        self.manager_handle = start_in_thread(self.data_dir, self.base, demo=self.demo,
                                              components=("manager",), config=self.config)

    def stop_manager(self) -> None:
        if self.manager_handle is not None:
            self.manager_handle.stop()
            assert not self.manager_handle.thread.is_alive(), "the manager did not stop"
            self.manager_handle = None

    def start_storage(self) -> None:
        if self.storage_handle is None:
            self.storage_handle = start_in_thread(self.data_dir, self.base, components=("storage-proxy",),
                                                  config=self.config)

    def start_appproxy(self) -> None:
        if self.appproxy_handle is None:
            self.appproxy_handle = start_in_thread(self.data_dir, self.base, components=("app-proxy",),
                                                   config=self.config)

    def stop_appproxy(self) -> None:
        if self.appproxy_handle is not None:
            self.appproxy_handle.stop()
            self.appproxy_handle = None

    def stop_storage(self) -> None:
        if self.storage_handle is not None:
            self.storage_handle.stop()
            self.storage_handle = None

    def start_agent(self, agent_id: str | None = None) -> None:
        for cfg in self.agent_configs:
            if agent_id in (None, cfg.agent.id) and cfg.agent.id not in self.agent_handles:
                self.agents_started.add(cfg.agent.id)  # before: a failed start may leave some
                self.agent_handles[cfg.agent.id] = start_in_thread(
                    self.data_dir, self.base, components=("agent",), config=cfg)

    def stop_agent(self, agent_id: str | None = None) -> None:
        for aid in [a for a in self.agent_handles if agent_id in (None, a)]:
            handle = self.agent_handles.pop(aid)
            handle.stop()
            assert not handle.thread.is_alive(), f"agent {aid} did not stop"

    async def start(self, agent: bool = True, appproxy: bool = False) -> None:
        self.start_storage()
        if appproxy:
            self.start_appproxy()
        self.start_manager()
        if agent:
            self.start_agent()
        anon = self.client()
        login = (await anon.post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": "admin@workbay.local",
            "password": ADMIN_PASSWORD}))["data"]
        self.admin = self.client(login["access_key"], login["secret_key"])
        if agent:
            await self.wait_agent_ready()

    async def wait_agent_ready(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Every agent is ALIVE and the image catalog has the kernel image on each."""
        async def ready():
            agents = {a["id"]: a for a in (await self.admin.get("/admin/agents"))["items"]}
            images = (await self.admin.get("/images", params={"installed": "true"}))["items"]
            on = {aid for i in images if i["name"] == IMAGE for aid in i["installed_on"]}
            ok = all(agents.get(aid, {}).get("status") == "ALIVE" and aid in on for aid in self.agent_ids)
            return [agents[aid] for aid in self.agent_ids] if ok else None
        return await wait_for(ready, timeout, "the agents are ready")

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        self.stop_agent()
        self.stop_manager()
        self.stop_storage()
        self.stop_appproxy()
        # Only agents that ran made containers: a System started with agent=False needs no engine.
        for aid in sorted(self.agents_started):
            remove_containers("ai.backend.agent-id", aid)

    # -- clients -------------------------------------------------------------------------------
    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Client:
        c = Client(self.url, access_key, secret_key, timeout=180)
        self.clients.append(c)
        return c

    async def login(self, email: str, password: str = DEMO_PASSWORD) -> Client:
        data = (await self.client().post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": email, "password": password}))["data"]
        return self.client(data["access_key"], data["secret_key"])

    # -- sessions ------------------------------------------------------------------------------
    async def session(self, client: Client, ref: str) -> dict[str, Any]:
        return await client.get(f"/session/{ref}")

    async def wait_status(self, client: Client, ref: str, statuses: str | tuple[str, ...],
                          timeout: float = 60) -> dict[str, Any]:
        wanted = (statuses,) if isinstance(statuses, str) else statuses

        async def check():
            info = await client.get(f"/session/{ref}")
            return info if info["status"] in wanted else None
        return await wait_for(check, timeout, f"session {ref} reaches {'/'.join(wanted)}",
                              lambda: client.get(f"/session/{ref}"))

    async def terminate_all(self, client: Client | None = None) -> None:
        """Destroy every live session (clean slate between tests)."""
        client = client or self.admin
        live = (await client.get("/sessions", params={"status": "live", "all": "true", "limit": 1000}))["items"]
        for s in live:
            try:
                await client.delete(f"/session/{s['id']}", params={"forced": "true"})
            except APIError:
                pass
        for s in live:
            await self.wait_status(client, s["id"], ("TERMINATED", "CANCELLED", "ERROR"), timeout=60)


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float, what: str,
                   describe: Callable[[], Awaitable[Any]] | None = None, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            state = await describe() if describe else None
            raise AssertionError(f"timed out after {timeout}s waiting until {what}; last state: {state}")
        await asyncio.sleep(interval)


class EventStream:
    """A signed GET /events/session read in the background; collects (event, data) pairs."""

    def __init__(self, client: Client, params: dict[str, str] | None = None) -> None:
        self.client = client
        self.params = params or {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> EventStream:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _read(self) -> None:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        path = "/events/session" + (f"?{query}" if query else "")
        headers = self.client._headers("GET", path, "text/plain")
        async with httpx.AsyncClient(timeout=None) as http:
            async with http.stream("GET", self.client.endpoint + path, headers=headers) as resp:
                assert resp.status_code == 200, await resp.aread()
                self.connected.set()
                event, data = None, []
                async for line in resp.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif not line.strip() and event:
                        self.events.append((event, json.loads("\n".join(data) or "{}")))
                        event, data = None, []

    def names(self, session_id: str | None = None) -> list[str]:
        return [e for e, d in self.events if session_id is None or d.get("sessionId") == session_id]

    async def wait(self, name: str, session_id: str, timeout: float = 30) -> None:
        async def seen():
            return name in self.names(session_id)
        await wait_for(seen, timeout, f"event {name} for {session_id}", lambda: asyncio.sleep(0, self.events))


@contextlib.asynccontextmanager
async def running_system(data_dir: Path, *, agent: bool = True, appproxy: bool = False,
                         webserver: bool = False, terminate: bool = True, **system: Any):
    """A started ``System`` (``system`` as for its constructor; 2 cores and 4 GiB by default),
    its sessions terminated (unless ``terminate`` is off: closing removes the containers anyway)
    and every component stopped afterwards.  ``webserver``: the webserver too, as ``workbay up``
    runs it (``sysm.web`` is its handle, ``sysm.web_url`` its address).  Without a container engine
    the test fails and says why: these tests are never skipped."""
    problem = engine_problem()
    if problem:
        pytest.fail(f"real containers are needed: {problem}")
    sysm = System(data_dir, **{"agent_slots": {"cpu": "2", "mem": "4g"}, **system})
    web = None
    try:
        await sysm.start(agent=agent, appproxy=appproxy)
        if webserver:
            web = start_in_thread(sysm.data_dir, sysm.base, components=("webserver",), config=sysm.config)
            sysm.web, sysm.web_url = web, web.webserver_url
        yield sysm
    finally:
        if web is not None:
            web.stop()
        if agent and terminate:
            await sysm.terminate_all()
        await sysm.close()


async def shell(client: Client, sid: str, command: str) -> tuple[str, str]:
    """A shell command as the session's user (execute, batch mode); (stdout, stderr)."""
    result = (await client.post(f"/session/{sid}", json={
        "mode": "batch", "runId": "", "code": "", "options": {"exec": command}}))["result"]
    while result["status"] in ("continued", "clean-finished", "build-finished"):
        result = (await client.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                              "code": ""}))["result"]
    return ("".join(d for t, d in result["console"] if t == "stdout"),
            "".join(d for t, d in result["console"] if t == "stderr"))
