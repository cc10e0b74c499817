"""The WebUI's Sessions page against a real manager (sessions written into its database, no agent):
the page and its list fragment, tabs and counts, filters and pages, status details, logs, rename
rules and errors, terminate (one and many), the detail drawer, resource bars, and what only
admins see (every user's sessions, the owner column, CSV export)."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid

import httpx
import pytest

from tests.support.session_rows import insert_sessions
from tests.support.webserver import WebVisitor, running_system

ADMIN = "admin@workbay.local"
PASSWORD = "Us3r!pass-word"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-sessions")) as s:
        yield s


class Browser(WebVisitor):
    def hx(self, target: str | None = None) -> dict[str, str]:
        headers = {"HX-Request": "true", "X-CSRF-Token": self.token}
        if target:
            headers["HX-Target"] = target
        return headers

    async def get(self, url: str, target: str | None = None, htmx: bool = False) -> httpx.Response:
        return await self.http.get(url, headers=self.hx(target) if (htmx or target) else None)

    async def post(self, url: str, data: dict | list | None = None) -> httpx.Response:
        return await self.http.post(url, data=data or {}, headers=self.hx())


def trigger(resp: httpx.Response, header: str = "HX-Trigger") -> dict:
    return json.loads(resp.headers.get(header) or "{}")


async def new_user(system, prefix: str = "s") -> str:
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    api = system.manager.admin()
    projects = (await api.get("/admin/projects", params={"limit": 1000}))["items"]
    default = [p["id"] for p in projects if p["name"] == "default"]
    await api.post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": PASSWORD, "project_ids": default})
    return email


@pytest.fixture
async def user(system):
    email = await new_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield email, await Browser(client).login(email, PASSWORD)


@pytest.fixture
async def admin(system):
    from tests.support.manager import ADMIN_PASSWORD

    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield await Browser(client).login(ADMIN, ADMIN_PASSWORD)


def rows(html: str) -> list[str]:
    return re.findall(r'data-session-name="([^"]+)"', html)


def count(html: str, tab: str) -> int:
    return int(re.search(r'data-count="' + tab + r'">(\d+)<', html).group(1))


async def test_page_renders_empty_states_and_the_nav_entry(user):
    _, b = user
    page = await b.get("/sessions")
    assert page.status_code == 200
    assert 'href="/sessions"' in page.text  # the sidebar entry
    for label in ("Running", "Interactive", "Batch", "Inference", "Upload sessions", "Finished"):
        assert label in page.text
    assert "No active sessions." in page.text and 'href="/session/start"' in page.text
    assert 'hx-trigger="every 5s' in page.text  # live refresh without reloading
    assert "Export CSV" not in page.text and 'data-col="owner"' not in page.text  # admin-only
    assert 'id="session-scope"' not in page.text
    finished = await b.get("/sessions?tab=finished")
    assert "No finished sessions." in finished.text
    stats = await b.get("/sessions/stats", htmx=True)
    assert stats.status_code == 200 and "Resource statistics" in stats.text
    assert 'data-slot="cpu"' in stats.text and 'data-slot="sessions"' in stats.text


async def test_list_tabs_counts_filters_pages_and_fragment(system, user):
    email, b = user
    await insert_sessions(system.manager.state, email, 3, status="RUNNING", session_type="interactive", name="alpha")
    await insert_sessions(system.manager.state, email, 2, status="RUNNING", session_type="batch", name="beta")
    await insert_sessions(system.manager.state, email, 1, status="PENDING", session_type="interactive", name="gamma")
    await insert_sessions(system.manager.state, email, 4, status="TERMINATED", name="omega")
    page = (await b.get("/sessions")).text
    assert count(page, "running") == 6 and count(page, "interactive") == 4 and count(page, "batch") == 2
    assert count(page, "inference") == 0 and count(page, "upload") == 0 and count(page, "finished") == 4
    assert len(rows(page)) == 6
    assert "Total 6 items" in page
    # the list alone for htmx (polling, tabs): no shell around it
    frag = await b.get("/sessions?tab=batch", target="sessions-list")
    assert frag.status_code == 200 and "<html" not in frag.text and 'id="sessions-list"' in frag.text
    assert sorted(rows(frag.text)) == ["beta-0000", "beta-0001"]
    pending = await b.get("/sessions?tab=running&status=pending", target="sessions-list")
    assert rows(pending.text) == ["gamma"]
    search = await b.get("/sessions?q=alpha-0001", target="sessions-list")
    assert rows(search.text) == ["alpha-0001"] and count(search.text, "running") == 1
    nothing = await b.get("/sessions?q=nothing-here", target="sessions-list")
    assert "No session matches the filter." in nothing.text
    paged = await b.get("/sessions?tab=running&size=10&page=1", target="sessions-list")
    assert len(rows(paged.text)) == 6
    finished = await b.get("/sessions?tab=finished", target="sessions-list")
    assert len(rows(finished.text)) == 4 and "user-requested" in finished.text
    # usage, configuration and elapsed time of a running session
    assert "3.5 %" in page and "64 MiB / 256 MiB" in page and "1 Core" in page
    assert 'data-col="elapsed"' in page
    # RUNNING sessions can be renamed; the "?" shows on PENDING and finished ones only
    assert page.count("/rename\"") >= 5
    assert len(re.findall(r'/sessions/[0-9a-f-]+/status"', page)) == 1


async def test_status_details_explain_pending_error_and_termination(system, user):
    email, b = user
    [pending] = await insert_sessions(system.manager.state, email, 1, status="PENDING", name="waits")
    [failed] = await insert_sessions(system.manager.state, email, 1, status="ERROR", name="broke")
    [ended] = await insert_sessions(system.manager.state, email, 1, status="TERMINATED", name="ended")
    why = (await b.get(f"/sessions/{pending}/status", htmx=True)).text
    assert 'data-predicate="resource_group_capacity" data-passed="false"' in why
    assert 'data-predicate="concurrency" data-passed="true"' in why
    assert "1 failed, 1 passed" in why and "no agent has room for cpu 1" in why
    assert re.search(r'data-testid="retries">3<', why)
    err = (await b.get(f"/sessions/{failed}/status", htmx=True)).text
    assert "failed-to-start" in err and "image not found" in err and "agent-x" in err
    done = (await b.get(f"/sessions/{ended}/status", htmx=True)).text
    assert 'data-testid="status-termination"' in done and "user-requested" in done
    missing = await b.get(f"/sessions/{uuid.uuid4()}/status", htmx=True)
    assert missing.status_code == 404 and "wb:toast" in trigger(missing)


async def test_detail_drawer_apps_and_logs(system, user):
    email, b = user
    [sid] = await insert_sessions(system.manager.state, email, 1, status="RUNNING", name="clustered", cluster_size=2)
    detail = (await b.get(f"/sessions/{sid}/detail", htmx=True)).text
    assert 'id="session-drawer"' in detail and sid in detail
    assert len(re.findall(r'<tr data-kernel="', detail)) == 2 and "sub1" in detail
    assert "(SHM: 64 MiB)" in detail
    refresh = (await b.get(f"/sessions/{sid}/detail?refresh=1", htmx=True)).text
    assert 'id="session-drawer"' not in refresh and 'id="session-detail-body"' in refresh
    apps = (await b.get(f"/sessions/{sid}/apps", htmx=True)).text
    assert "jupyter" in apps and "8080" in apps
    logs = (await b.get(f"/sessions/{sid}/logs", htmx=True)).text
    assert 'id="log-kernel"' in logs and "main (" in logs and "sub1 (" in logs
    assert "No log entries." in logs  # no agent holds the container
    text = await b.get(f"/sessions/{sid}/logs?kernel=sub1", target="session-log")
    assert text.status_code == 200 and 'id="session-log"' in text.text and 'id="log-kernel"' not in text.text


async def test_rename_in_place_enforces_the_rules_and_shows_api_errors(system, user):
    email, b = user
    [sid] = await insert_sessions(system.manager.state, email, 1, status="RUNNING", name="old-name")
    await insert_sessions(system.manager.state, email, 1, status="RUNNING", name="taken-name")
    [dead] = await insert_sessions(system.manager.state, email, 1, status="TERMINATED", name="gone-name")
    form = (await b.get(f"/sessions/{sid}/rename", htmx=True)).text
    assert "wb-editing" in form and 'value="old-name"' in form
    short = await b.post(f"/sessions/{sid}/rename", {"name": "ab"})
    assert "4 to 64 characters" in short.text and "is-invalid" in short.text
    bad = await b.post(f"/sessions/{sid}/rename", {"name": "-bad name-"})
    assert "starting and ending with a letter or digit" in bad.text
    dup = await b.post(f"/sessions/{sid}/rename", {"name": "taken-name"})
    assert "is-invalid" in dup.text and "taken-name exists" in dup.text  # the manager's sentence
    ok = await b.post(f"/sessions/{sid}/rename", {"name": "new-name"})
    assert 'data-testid="session-name">new-name<' in ok.text
    after = trigger(ok, "HX-Trigger-After-Settle")
    assert after["wb:toast"]["message"] == "The session was renamed to new-name."
    assert "new-name" in rows((await b.get("/sessions")).text)
    cancel = await b.get(f"/sessions/{sid}/rename?cancel=1", htmx=True)
    assert "wb-editing" not in cancel.text and "new-name" in cancel.text
    not_running = await b.post(f"/sessions/{dead}/rename", {"name": "alive-again"})
    assert "Only a running session can be renamed." in not_running.text


async def test_terminate_one_and_many(system, user):
    email, b = user
    ids = await insert_sessions(system.manager.state, email, 2, status="PENDING", name="stop")
    none = await b.get("/sessions/terminate", htmx=True)
    assert "Select the sessions" in trigger(none)["wb:toast"]["message"]
    one = (await b.get(f"/sessions/terminate?id={ids[0]}", htmx=True)).text
    assert "Terminate stop-0000?" in one and "/home/work" in one
    many = (await b.get(f"/sessions/terminate?id={ids[0]}&id={ids[1]}", htmx=True)).text
    assert "Terminate 2 sessions" in many and "stop-0001" in many
    done = await b.post("/sessions/terminate", {"id": [ids[0], ids[1]]})
    t = trigger(done)
    assert t["wb:toast"]["message"] == "2 sessions are terminating." and t["wb:changed"] is True
    finished = (await b.get("/sessions?tab=finished", target="sessions-list")).text
    assert {"stop-0000", "stop-0001"} <= set(rows(finished))
    again = await b.get(f"/sessions/terminate?id={ids[0]}", htmx=True)
    assert "ended already" in trigger(again)["wb:toast"]["message"]


async def test_users_cannot_see_or_touch_other_users_sessions(system, user):
    _, b = user
    other = await new_user(system, "other")
    [theirs] = await insert_sessions(system.manager.state, other, 1, status="RUNNING", name="not-yours")
    assert "not-yours" not in (await b.get("/sessions?scope=all")).text  # the scope is ignored for users
    for url in (f"/sessions/{theirs}/detail", f"/sessions/{theirs}/logs", f"/sessions/{theirs}/status"):
        resp = await b.get(url, htmx=True)
        assert resp.status_code == 404, url
    denied = await b.post("/sessions/terminate", {"id": [theirs]})
    assert "could not be terminated" in trigger(denied)["wb:toast"]["message"]
    export = await b.get("/sessions/export.csv", htmx=True)
    assert export.status_code == 403
    assert (await b.get("/sessions/export", htmx=True)).status_code == 403


async def test_admin_sees_everyone_with_owner_column_and_exports_csv(system, admin):
    owner = await new_user(system, "owned")
    await insert_sessions(system.manager.state, owner, 2, status="RUNNING", name="owned-by-user")
    page = (await admin.get("/sessions?q=owned-by-user")).text
    assert 'data-col="owner"' in page and owner in page and "Export CSV" in page
    assert 'id="session-scope"' in page
    mine = (await admin.get("/sessions?scope=mine&q=owned-by-user", target="sessions-list")).text
    assert not rows(mine) and 'data-col="owner"' not in mine
    dialog = (await admin.get("/sessions/export?q=owned-by-user", htmx=True)).text
    assert 'name="filename"' in dialog and 'maxlength="251"' in dialog
    export = await admin.get("/sessions/export.csv?q=owned-by-user&filename=my%20list")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert 'filename="my list.csv"' in export.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert sorted(r["name"] for r in table) == ["owned-by-user-0000", "owned-by-user-0001"]
    assert {r["owner_email"] for r in table} == {owner}
    long = await admin.get("/sessions/export.csv?q=owned-by-user&filename=" + "x" * 400)
    name = re.search(r'filename="([^"]+)"', long.headers["content-disposition"]).group(1)
    assert len(name) <= 255 and name.endswith(".csv")
