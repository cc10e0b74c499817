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


@dataclass
class ManagerHarness:
    app: Any
    state: ManagerState
    admin_access_key: str = ""
    admin_secret_key: str = ""
    clients: list[Client] = field(default_factory=list)

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
            await c.close()
        await close_state(self.state)


async def start_manager(db_url: str, data_dir: Path, redis_url: str = "", **manager_cfg: Any
                        ) -> ManagerHarness:
    import os

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    config = load_config(data_dir=data_dir, db={"url": db_url}, redis={"url": redis_url},
                         manager=manager_cfg)
    state = await build_state(config)
    app = create_app(config, state=state)
    h = ManagerHarness(app=app, state=state)
    login = (await h.client().post("/auth/authorize", json={
        "type": "keypair", "domain": "default", "username": "admin@workbay.local",
        "password": ADMIN_PASSWORD}))["data"]
    h.admin_access_key, h.admin_secret_key = login["access_key"], login["secret_key"]
    return h
