"""One session-name rule (common.domain.session_name_problem) everywhere: the manager's API (the
dry run of POST /session), the launcher (the webserver's form POST) and rename (the webserver's
inline form and the manager's rename API) accept and refuse the same names."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.support.session_rows import insert_sessions
from tests.support.webserver import WebVisitor, new_user, running_system
from workbay.client.sdk import APIError
from workbay.common.domain import valid_session_name
from workbay.manager.models.compute import ComputeSession, Image

PASSWORD = "Us3r!pass-word"
IMAGE = "localhost/workbay/python:3.11"
NAMES = ("세션이름", "my.sess", "_abc_", "abc", "a" * 65, "ok-name_1")
ACCEPTED = {"ok-name_1"}


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("name-agreement")) as s:
        async with s.manager.state.ctx.db.begin() as db:
            db.add(Image(name=IMAGE, tag="3.11", architecture="x86_64", installed_on=["agent-x"], labels={},
                         min_slots={"cpu": "1", "mem": "268435456"}))
        yield s


async def member(system) -> str:
    """A new user of the default project (sessions need one)."""
    email = await new_user(system, PASSWORD)
    admin = system.manager.admin()
    projects = (await admin.get("/admin/projects", params={"limit": 1000}))["items"]
    await admin.patch(f"/admin/users/{email}", json={
        "project_ids": [p["id"] for p in projects if p["name"] == "default"]})
    return email


class Browser(WebVisitor):
    async def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        return await self.http.post(url, data=data, headers={"HX-Request": "true", "X-CSRF-Token": self.token})


async def manager_verdicts(system, email: str) -> dict[str, bool]:
    api = await system.manager.login(email, PASSWORD)
    verdicts = {}
    for name in NAMES:
        try:
            await api.post("/session/_/validate", json={"name": name, "image": IMAGE, "enqueueOnly": True})
        except APIError as err:
            assert err.status == 400, (name, err)
            assert "name" in (err.body.get("field_errors") or {}), (name, err.body)
            verdicts[name] = False
        else:
            verdicts[name] = True
    return verdicts


async def launcher_verdicts(system, email: str) -> dict[str, bool]:
    verdicts = {}
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        b = await Browser(client).login(email, PASSWORD)
        for name in NAMES:
            resp = await b.post("/session/start", {"name": name, "version": IMAGE, "cpu": "1", "mem": "0.25",
                                                   "nomount_ok": "on"})
            assert resp.status_code == 200, (name, resp.text[:500])
            verdicts[name] = resp.headers.get("HX-Redirect") == "/sessions"
            if not verdicts[name]:  # refused at the name field, with the manager's sentence
                assert 'id="l-name-error"' in resp.text, name
    return verdicts


async def rename_verdicts(system, email: str) -> tuple[dict[str, bool], dict[str, bool]]:
    [sid] = await insert_sessions(system.manager.state, email, 1, status="RUNNING", name="rename-me")
    api = await system.manager.login(email, PASSWORD)
    web: dict[str, bool] = {}
    manager: dict[str, bool] = {}
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        b = await Browser(client).login(email, PASSWORD)
        for name in NAMES:
            resp = await b.post(f"/sessions/{sid}/rename", {"name": name})
            assert resp.status_code == 200, (name, resp.text[:500])
            web[name] = "HX-Trigger-After-Settle" in resp.headers
            if not web[name]:
                assert "is-invalid" in resp.text, name
            await api.post(f"/session/{sid}/rename", params={"name": "rename-me"})  # back, for the next one
            try:
                await api.post(f"/session/{sid}/rename", params={"name": name})
            except APIError as err:
                assert err.status == 400, (name, err)
                manager[name] = False
            else:
                manager[name] = True
            await api.post(f"/session/{sid}/rename", params={"name": "rename-me"})
    return web, manager


async def test_manager_launcher_and_rename_agree(system):
    expected = {name: name in ACCEPTED for name in NAMES}
    assert {name: valid_session_name(name) for name in NAMES} == expected  # the rule itself
    launching = await member(system)
    assert await manager_verdicts(system, launching) == expected
    assert await launcher_verdicts(system, launching) == expected
    async with system.manager.state.ctx.db() as db:
        made = (await db.execute(select(ComputeSession.name).where(
            ComputeSession.name.in_(NAMES)))).scalars().all()
    assert made == ["ok-name_1"]
    web, manager = await rename_verdicts(system, await member(system))
    assert web == expected
    assert manager == expected
