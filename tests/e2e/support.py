"""Helpers of the end-to-end tests: the admin's API client (signed requests straight to the
manager, for setting up), screenshots in both themes, and page objects of the WebUI."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from workbay import API_VERSION
from workbay.common import signing

ADMIN = "admin@workbay.local"
ADMIN_PASSWORD = "Adm1n!e2e-pass"
USER_PASSWORD = "Us3r!e2e-pass"


class AdminAPI:
    """The superadmin's keypair, signing requests like the SDK.  Plain blocking calls: the system
    under test runs in its own thread, so a short blocking call from a test is harmless."""

    def __init__(self, url: str, access_key: str, secret_key: str) -> None:
        self.url, self.access_key, self.secret_key = url, access_key, secret_key

    @classmethod
    def login(cls, url: str) -> AdminAPI:
        resp = httpx.post(url + "/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": ADMIN, "password": ADMIN_PASSWORD})
        resp.raise_for_status()
        data = resp.json()["data"]
        return cls(url, data["access_key"], data["secret_key"])

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        path_and_query = path + (f"?{urlencode(params)}" if params else "")
        ctype = "application/json" if body is not None else "text/plain"
        headers = signing.sign_headers(self.access_key, self.secret_key, method, path_and_query,
                                       urlsplit(self.url).netloc, ctype, API_VERSION)
        resp = httpx.request(method, self.url + path_and_query, headers=headers,
                             content=json.dumps(body) if body is not None else None)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def new_user(self, prefix: str = "user", **extra: Any) -> str:
        email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        self.call("POST", "/admin/users", {"email": email, "username": email.split("@")[0],
                                           "password": USER_PASSWORD, "full_name": prefix.title(),
                                           **extra})
        return email


@dataclass
class Workbay:
    url: str
    manager_url: str
    admin: AdminAPI


class Screenshots:
    """Saves each screen in the light and the dark theme under test-artifacts/screenshots/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def take(self, page: Page, name: str) -> None:
        await page.wait_for_load_state("networkidle")
        await page.wait_for_timeout(250)  # let dialogs and toasts finish their transitions
        original = await page.evaluate("document.documentElement.getAttribute('data-bs-theme')")
        for theme in ("light", "dark"):
            await page.evaluate("t => document.documentElement.setAttribute('data-bs-theme', t)", theme)
            await page.screenshot(path=str(self.folder / f"{name}-{theme}.png"))
        await page.evaluate("t => document.documentElement.setAttribute('data-bs-theme', t)", original)


# -- page objects -----------------------------------------------------------------------------------
class LoginPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.message = page.get_by_test_id("login-message")

    async def open(self) -> LoginPage:
        await self.page.goto("/login")
        return self

    async def submit(self, email: str, password: str, otp: str | None = None) -> None:
        await self.page.fill("#login-username", email)
        await self.page.fill("#login-password", password)
        if otp is not None:
            await self.page.fill("#login-otp", otp)
        await self.page.get_by_role("button", name=re.compile("^(Log in|로그인)$")).click()

    async def log_in(self, email: str, password: str, landing: str) -> None:
        await self.open()
        await self.submit(email, password)
        await self.page.wait_for_url(f"**{landing}")


class Shell:
    """The sidebar, the top bar, the user menu, toasts and dialogs."""

    def __init__(self, page: Page) -> None:
        self.page = page

    async def user_menu(self, item: str) -> None:
        await self.page.locator("#wb-user-menu").click()
        await self.page.locator(".dropdown-menu.show").get_by_text(item, exact=True).click()

    async def log_out(self) -> None:
        await self.user_menu("Log out")
        await self.page.wait_for_url("**/login")

    async def toast(self, text: str | re.Pattern) -> None:
        await expect(self.page.locator("#toasts .toast").filter(has_text=text).first).to_be_visible()

    def dialog(self) -> Locator:
        """The open dialog, once shown (actions on it wait until it is)."""
        return self.page.locator("#modal-host .modal.show[data-wb-ready]")

    async def dialog_closed(self) -> None:
        await expect(self.page.locator("#modal-host .modal")).to_have_count(0)


# -- a whole system with real containers, for the compute journeys ------------------------------
@contextlib.asynccontextmanager
async def container_system(tmp_dir, purpose: str, cpu: str = "2", appproxy: bool = False):
    """Manager, storage-proxy, agent (real Podman containers), app-proxy when asked, and the
    webserver: what `workbay up` runs, one component per handle.  ``purpose`` names the journeys
    in the failure when the engine is missing."""
    from tests.support.sessions import engine_problem, running_system

    problem = engine_problem()
    if problem:
        pytest.fail(f"the {purpose} need real containers: {problem}")
    async with running_system(tmp_dir, appproxy=appproxy, webserver=True,
                              agent_slots={"cpu": cpu, "mem": "4g"}) as sysm:
        yield sysm


def workbay_of(system) -> Workbay:
    """The conftest's fixtures (browser context, page) run against this system."""
    return Workbay(system.web.webserver_url, system.url,
                   AdminAPI(system.url, system.admin.access_key, system.admin.secret_key))
