"""A manager running in-process on a throwaway database, with SDK clients for test actors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from workbay.client.sdk import Client
from workbay.common.config import load_config
from workbay.manager.app import build_state, close_state, create_app
from workbay.manager.state import ManagerState

ADMIN_PASSWORD = "Adm1n!pass-word"
TEST_ENDPOINT = "http://manager.test"
STORAGE_SECRET = "storage-secret-for-manager-tests-0123456789"
DATABASE_SECRET = "database-secret-for-manager-tests-0123456789"  # replicas on one database share it


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the in-process app serving its host:port (the storage-proxy's two
    APIs), so the manager's real HTTP client code runs without sockets."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[f"{request.url.host}:{request.url.port}"].handle_async_request(request)


def storage_router(config) -> HostRouter:
    from workbay.storage.app import create_client_app, create_manager_app
    from workbay.storage.volumes import Volumes

    volumes = Volumes(config)
    st = config.storage
    return HostRouter({
        f"{st.host}:{st.client_port}": httpx.ASGITransport(app=create_client_app(config, volumes)),
        f"{st.host}:{st.manager_port}": httpx.ASGITransport(app=create_manager_app(config, volumes)),
    })


@dataclass
class ManagerHarness:
    app: Any
    state: ManagerState
    admin_access_key: str = ""
    admin_secret_key: str = ""
    clients: list[Client] = field(default_factory=list)
    storage: HostRouter | None = None

    def storage_http(self) -> httpx.AsyncClient:
        """An HTTP client for the URLs request-upload / request-download answer."""
        c = httpx.AsyncClient(transport=self.storage)
        self.clients.append(c)
        return c

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Client:
        c = Client(TEST_ENDPOINT, access_key, secret_key,
                   transport=httpx.ASGITransport(app=self.app, client=("127.0.0.1", 5000)))
        self.clients.append(c)
        return c

    def admin(self) -> Client:
        return self.client(self.admin_access_key, self.admin_secret_key)

    async def login(self, email: str, password: str, otp: str | None = None) -> Client:
        body = {"type": "keypair", "domain": "default", "username": email, "password": password}
        if otp:
            body["otp"] = otp
        data = (await self.client().post("/auth/authorize", json=body))["data"]
        return self.client(data["access_key"], data["secret_key"])

    async def close(self) -> None:
        for c in self.clients:
            await (c.aclose() if isinstance(c, httpx.AsyncClient) else c.close())
        await close_state(self.state)


async def start_manager(db_url: str, data_dir: Path, redis_url: str = "", **manager_cfg: Any
                        ) -> ManagerHarness:
    import os

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    config = load_config(data_dir=data_dir, db={"url": db_url}, redis={"url": redis_url},
                         manager=manager_cfg, secrets={"storage": STORAGE_SECRET, "database": DATABASE_SECRET})
    router = storage_router(config)
    state = await build_state(config, storage_transport=router)
    app = create_app(config, state=state)
    h = ManagerHarness(app=app, state=state, storage=router)
    login = (await h.client().post("/auth/authorize", json={
        "type": "keypair", "domain": "default", "username": "admin@workbay.local",
        "password": ADMIN_PASSWORD}))["data"]
    h.admin_access_key, h.admin_secret_key = login["access_key"], login["secret_key"]
    return h
