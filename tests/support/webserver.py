"""Serving a manager and a webserver over real HTTP (uvicorn, free ports) inside a test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.manager import ManagerHarness, start_manager
from workbay.common.config import load_config
from workbay.web.app import create_app as create_web_app


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # leave the test runner's signal handling alone
        yield


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on a free loopback port; yields its base URL."""
    sock = _bound_socket()
    server = _QuietServer(uvicorn.Config(app, log_level="warning", lifespan="on", proxy_headers=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@dataclass
class System:
    manager: ManagerHarness
    manager_url: str
    web_url: str
    config: Any


@contextlib.asynccontextmanager
async def running_system(tmp: Path, redis_url: str = "", manager_config: dict[str, Any] | None = None,
                         **webserver: Any) -> AsyncIterator[System]:
    """``manager_config``: settings of the manager's section (its login lockout, ...);
    ``webserver``: of the webserver's."""
    manager = await start_manager(f"sqlite+aiosqlite:///{tmp / 'web-test.db'}", tmp,
                                  **(manager_config or {}))
    try:
        async with serving(manager.app) as manager_url:
            config = load_config(data_dir=tmp, redis={"url": redis_url},
                                 webserver={"manager_url": manager_url, **webserver})
            async with serving(create_web_app(config)) as web_url:
                yield System(manager, manager_url, web_url, config)
    finally:
        await manager.close()


async def new_user(system: System, password: str) -> str:
    """A new user made by the administrator; returns its email."""
    email = f"u-{uuid.uuid4().hex[:10]}@example.com"
    await system.manager.admin().post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": password})
    return email


class WebVisitor:
    """A WebUI visitor over HTTP: logs in, and keeps the page's CSRF token for htmx requests.
    The tests' Browser classes add what their pages need."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client
        self.token = ""

    async def login(self, email: str, password: str):
        resp = await self.http.post("/server/login", json={"username": email, "password": password})
        assert resp.json()["authenticated"] is True
        page = await self.http.get("/summary")
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        return self
