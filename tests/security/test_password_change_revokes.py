"""Finding 12: changing a password (by the user or by an administrator) left the user's other
logins valid.  Now every webserver login names the password it was made with (the manager's
login epoch, sent with each request); after a change the manager refuses the others (401) and the
webserver drops them, while the login that changed its own password carries on.  Real manager
and webserver over HTTP, each browser its own cookie jar."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.support.databases import REDIS_URL
from tests.support.manager import ADMIN_PASSWORD
from tests.support.webserver import new_user, running_system

PASSWORD = "Us3r!pass-word"
NEW_PASSWORD = "N3w!pass-word-2"
ADMIN = "admin@workbay.local"


@pytest.fixture(scope="module", params=["memory", "redis"])
async def system(request, tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("revoke"),
                              redis_url=REDIS_URL if request.param == "redis" else "") as s:
        yield s


class Browser:
    def __init__(self, system) -> None:
        self.http = httpx.AsyncClient(base_url=system.web_url, timeout=30)

    async def login(self, email: str, password: str) -> Browser:
        resp = await self.http.post("/server/login", json={"username": email, "password": password})
        assert resp.json()["authenticated"] is True, resp.text
        return self

    async def logged_in(self) -> bool:
        return (await self.http.post("/server/login-check")).json()["authenticated"]

    async def me(self) -> int:
        return (await self.http.get("/func/user/me")).status_code

    async def csrf(self) -> str:
        page = await self.http.get("/summary")
        return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def browsers(system):
    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser(system))
        return made[-1]
    yield make
    for b in made:
        await b.close()


async def test_own_change_through_func_ends_the_other_logins_only(system, browsers):
    email = await new_user(system, PASSWORD)
    mine, thief = await browsers().login(email, PASSWORD), await browsers().login(email, PASSWORD)
    assert await thief.me() == 200
    changed = await mine.http.post("/func/auth/update-password", json={
        "old_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert changed.status_code == 200, changed.text
    assert "x-workbay-login-epoch" not in changed.headers  # internal to webserver and manager
    assert await mine.me() == 200 and await mine.logged_in()
    refused = await thief.http.get("/func/user/me")
    assert refused.status_code == 401 and refused.json()["type"].endswith("auth-failed")
    assert not await thief.logged_in()  # the webserver dropped the login
    page = await thief.http.get("/summary")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert (await browsers().login(email, NEW_PASSWORD)).http.cookies.get("workbay_session")


async def test_own_change_on_the_account_page_keeps_this_login(system, browsers):
    email = await new_user(system, PASSWORD)
    mine, other = await browsers().login(email, PASSWORD), await browsers().login(email, PASSWORD)
    resp = await mine.http.post("/account/password", headers={"X-CSRF-Token": await mine.csrf()}, data={
        "old_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert resp.status_code == 200 and "HX-Trigger" in resp.headers
    assert await mine.me() == 200
    assert await other.me() == 401 and not await other.logged_in()


async def test_an_administrators_change_ends_every_login_of_the_user(system, browsers):
    email = await new_user(system, PASSWORD)
    first, second = await browsers().login(email, PASSWORD), await browsers().login(email, PASSWORD)
    await system.manager.admin().patch(f"/admin/users/{email}", json={"password": NEW_PASSWORD})
    assert await first.me() == 401 and await second.me() == 401
    assert not await first.logged_in() and not await second.logged_in()
    # other changes of the account do not end logins
    third = await browsers().login(email, NEW_PASSWORD)
    await system.manager.admin().patch(f"/admin/users/{email}", json={"full_name": "Renamed"})
    assert await third.me() == 200


async def test_an_administrator_changing_their_own_password_keeps_this_login(system, browsers):
    admin_email = f"a-{uuid.uuid4().hex[:10]}@example.com"
    await system.manager.admin().post("/admin/users", json={
        "email": admin_email, "username": admin_email.split("@")[0], "password": PASSWORD,
        "role": "superadmin"})
    mine, other = await browsers().login(admin_email, PASSWORD), await browsers().login(admin_email, PASSWORD)
    resp = await mine.http.patch(f"/func/admin/users/{admin_email}", json={"password": NEW_PASSWORD})
    assert resp.status_code == 200, resp.text
    assert await mine.me() == 200
    assert await other.me() == 401
    # the built-in administrator is untouched
    assert (await browsers().login(ADMIN, ADMIN_PASSWORD)).http.cookies.get("workbay_session")
