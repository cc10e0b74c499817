"""The WebUI's compute pages against a real manager (agents written through the registry, no
containers): Home (UI-3), the Summary page's resource cards (UI-4), Agent Summary (AS-1), the
admin Resources page's Agents and Resource Groups tabs (AD-5, AD-6), the Environments page
(images, presets AD-4) and the Maintenance page (AD-8) — rendering, validation errors, role gating
(users never see admin pages or admin data) and the Korean catalog."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.manager import ADMIN_PASSWORD
from tests.support.webserver import WebVisitor, running_system
from workbay.manager.services.agent_registry import AgentRegistry, Heartbeat

ADMIN = "admin@workbay.local"
PASSWORD = "Us3r!pass-word"
AGENT = "wb-int-agent-1"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-admin-resources")) as s:
        await AgentRegistry(s.manager.state.ctx).heartbeat(Heartbeat.model_validate({
            "id": AGENT, "addr": "http://10.1.2.3:6001", "region": "local", "resource_group": "default",
            "architecture": "x86_64",
            "slots": {"cpu": "4", "mem": str(8 << 30)}, "version": "test",
            "images": [{"name": "localhost/workbay/python:3.11", "architecture": "x86_64", "digest": "sha256:abc",
                        "labels": {}, "size": 1}]}))
        yield s


class Browser(WebVisitor):
    def hx(self) -> dict[str, str]:
        return {"HX-Request": "true", "X-CSRF-Token": self.token}

    async def get(self, url: str, htmx: bool = False, **params) -> httpx.Response:
        return await self.http.get(url, params=params or None, headers=self.hx() if htmx else None)

    async def post(self, url: str, data: dict | list | None = None) -> httpx.Response:
        if isinstance(data, list):  # repeated fields (check boxes)
            return await self.http.post(url, content=urlencode(data), headers={
                **self.hx(), "Content-Type": "application/x-www-form-urlencoded"})
        return await self.http.post(url, data=data or {}, headers=self.hx())


def trigger(resp: httpx.Response) -> dict:
    return json.loads(resp.headers.get("HX-Trigger") or "{}")


def toast(resp: httpx.Response) -> str | None:
    return (trigger(resp).get("wb:toast") or {}).get("message")


async def new_user(system, prefix: str = "u", **extra) -> str:
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    api = system.manager.admin()
    projects = (await api.get("/admin/projects", params={"limit": 1000}))["items"]
    default = [p["id"] for p in projects if p["name"] == "default"]
    await api.post("/admin/users", json={"email": email, "username": email.split("@")[0], "password": PASSWORD,
                                         "project_ids": default, **extra})
    return email


@pytest.fixture
async def user(system):
    email = await new_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield await Browser(client).login(email, PASSWORD)


@pytest.fixture
async def admin(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield await Browser(client).login(ADMIN, ADMIN_PASSWORD)


async def test_users_see_home_summary_cards_and_agent_summary_but_no_admin_pages(user):
    home = await user.get("/start")
    assert home.status_code == 200
    for text in ("Start an interactive session", "Start a batch session", "Create a folder", "Upload files"):
        assert text in home.text
    assert 'href="/session/start?type=batch"' in home.text and 'hx-get="/data/new"' in home.text
    summary = await user.get("/summary")
    assert 'hx-get="/summary/resources"' in summary.text and 'href="/start"' in summary.text
    assert 'href="/agent-summary"' in summary.text
    # UI-4's client panel: the login commands point at this very webserver
    assert re.search(r'value="workbay login --endpoint http://[^"/]+" readonly data-testid="client-cmd-workbay"', summary.text)
    assert "BACKEND_ENDPOINT_TYPE=session backend.ai login" in summary.text
    for hidden in ('href="/environments"', 'href="/maintenance"', 'href="/resources"'):
        assert hidden not in summary.text
    cards = await user.get("/summary/resources", htmx=True)
    assert cards.status_code == 200
    assert "Resource usage" in cards.text and "System resources" in cards.text
    assert 'href="/agent-summary"' in cards.text
    assert 'id="summary-rg"' in cards.text and '<option value="default" selected>' in cards.text
    assert 'data-slot="cpu"' in cards.text and 'data-slot="mem"' in cards.text and 'data-slot="sessions"' in cards.text
    assert re.search(r'data-testid="my-sessions">0 / \d+<', cards.text)
    assert "Your running sessions" in cards.text  # users count only their own
    assert re.search(r'data-testid="stat-agents"><div class="wb-stat-value">1<', cards.text)
    agents = await user.get("/agent-summary")
    assert agents.status_code == 200 and f'data-agent="{AGENT}"' in agents.text
    assert "10.1.2.3" not in agents.text  # no addresses for users (AS-1)
    assert 'data-slot="cpu"' in agents.text and "0 / 4" in agents.text
    terminated = await user.get("/agent-summary", status="terminated")
    assert "No terminated agents." in terminated.text
    nothing = await user.get("/agent-summary", q="no-such-agent")
    assert "No item matches the filter." in nothing.text
    for url in ("/resources?tab=agents", "/resources?tab=resource-groups", "/environments",
                "/environments?tab=presets", "/maintenance", "/resources/groups/new", "/environments/presets/new",
                f"/resources/agents/{AGENT}/detail"):
        assert (await user.get(url)).status_code == 403, url
    for url in ("/resources/groups", "/environments/presets", f"/resources/agents/{AGENT}/schedulable",
                "/maintenance/recalculate", "/maintenance/rescan-images", "/resources/groups/default/delete"):
        assert (await user.post(url, {"name": "x"})).status_code == 403, url


async def test_agents_tab_lists_addresses_toggles_schedulable_and_shows_live_usage(system, admin):
    page = await admin.get("/resources", tab="agents")
    assert page.status_code == 200
    assert 'href="/resources?tab=storage"' in page.text and 'href="/resources?tab=resource-groups"' in page.text
    row = re.search(rf'<tr data-agent="{AGENT}">.*?</tr>', page.text, re.S).group(0)
    assert "http://10.1.2.3:6001" in row and "x86_64" in row and "Running" in row
    assert 'data-testid="schedulable-switch" checked' in row and "disabled" not in row.split("schedulable-switch")[1][:40]
    assert 'data-col="utilization"' in row and "CPU" in row
    assert 'hx-trigger="every 10s, wb:changed from:body"' in page.text  # live without reloading
    for col in ("Region", "Architecture", "Allocation", "Utilization", "Disk", "Resource group", "Schedulable"):
        assert col in page.text
    off = await admin.post(f"/resources/agents/{AGENT}/schedulable", {"schedulable": "off"})
    assert toast(off) == f"Agent {AGENT} takes no new sessions; its running sessions keep running."
    agents = (await system.manager.admin().get("/admin/agents"))["items"]
    assert next(a for a in agents if a["id"] == AGENT)["schedulable"] is False
    page = await admin.get("/resources", tab="agents")
    row = re.search(rf'<tr data-agent="{AGENT}">.*?</tr>', page.text, re.S).group(0)
    assert 'data-testid="schedulable-switch" checked' not in row
    assert "bi-slash-circle" in (await admin.get("/agent-summary")).text
    on = await admin.post(f"/resources/agents/{AGENT}/schedulable", {"schedulable": "on"})
    assert toast(on) == f"Agent {AGENT} takes new sessions again."
    detail = await admin.get(f"/resources/agents/{AGENT}/detail", htmx=True)
    assert detail.status_code == 200 and 'data-testid="agent-detail"' in detail.text
    assert "No session runs on this agent." in detail.text and "http://10.1.2.3:6001" in detail.text
    unknown = await admin.post("/resources/agents/ghost-agent/schedulable", {"schedulable": "off"})
    assert trigger(unknown)["wb:toast"]["level"] == "danger"
    terminated = await admin.get("/resources", tab="agents", status="terminated")
    assert "No terminated agents." in terminated.text
    storage = await admin.get("/resources")  # the Storage tab stays the default
    assert 'data-volume="' in storage.text or "No storage volume" in storage.text


async def test_resource_group_create_edit_delete_with_errors(system, admin):
    page = await admin.get("/resources", tab="resource-groups")
    assert page.status_code == 200 and '<tr data-group="default">' in page.text
    dialog = await admin.get("/resources/groups/new", htmx=True)
    assert 'id="rg-name"' in dialog.text and 'id="rg-scheduler"' in dialog.text and 'id="rg-type-batch"' in dialog.text
    bad = await admin.post("/resources/groups", [("name", ""), ("scheduler", "fifo"), ("pending_timeout", "-3"),
                                                 ("retries_to_skip", "x"), ("wsproxy_addr", "ftp://x")])
    assert "Name is required." in bad.text and "Allow at least one session type." in bad.text
    assert "Enter a number of seconds" in bad.text and "Enter a whole number of retries" in bad.text
    assert "Start the address with http:// or https://." in bad.text and not toast(bad)
    form = [("name", "gpu-night"), ("description", "Night jobs"), ("scheduler", "drf"),
            ("allowed_session_types", "batch"), ("pending_timeout", "600"), ("retries_to_skip", "5"),
            ("agent_selection", "concentrated"), ("wsproxy_addr", ""), ("is_active", "off"), ("is_active", "on"),
            ("is_public", "off"), ("domains", "default")]
    made = await admin.post("/resources/groups", form)
    assert toast(made) == "Resource group gpu-night was created."
    dup = await admin.post("/resources/groups", form)
    assert "already exists" in dup.text and 'is-invalid' in dup.text
    group = await system.manager.admin().get("/admin/resource-groups/gpu-night")
    assert group["scheduler"] == "drf" and group["allowed_session_types"] == ["batch"]
    assert group["pending_timeout"] == 600 and group["retries_to_skip"] == 5 and group["is_public"] is False
    page = await admin.get("/resources", tab="resource-groups")
    row = re.search(r'<tr data-group="gpu-night">.*?</tr>', page.text, re.S).group(0)
    assert "drf" in row and "Night jobs" in row and "00:10:00" in row and "private" in row
    edit = await admin.get("/resources/groups/gpu-night/edit", htmx=True)
    assert 'value="gpu-night"' in edit.text and "readonly" in edit.text and '<option value="drf" selected>' in edit.text
    changed = await admin.post("/resources/groups/gpu-night", [
        ("scheduler", "lifo"), ("allowed_session_types", "interactive"), ("allowed_session_types", "batch"),
        ("pending_timeout", "0"), ("retries_to_skip", "2"), ("is_active", "on"), ("is_public", "on"),
        ("domains", "default"), ("description", "Day and night")])
    assert toast(changed) == "Resource group gpu-night was updated."
    group = await system.manager.admin().get("/admin/resource-groups/gpu-night")
    assert group["scheduler"] == "lifo" and group["allowed_session_types"] == ["interactive", "batch"]
    confirm = await admin.get("/resources/groups/gpu-night/delete", htmx=True)
    assert 'data-wb-confirm="gpu-night"' in confirm.text
    wrong = await admin.post("/resources/groups/gpu-night/delete", {"confirm": "nope"})
    assert "Type gpu-night to confirm." in wrong.text and not toast(wrong)
    gone = await admin.post("/resources/groups/gpu-night/delete", {"confirm": "gpu-night"})
    assert toast(gone) == "Resource group gpu-night was deleted."
    busy = await admin.post("/resources/groups/default/delete", {"confirm": "default"})
    assert "still has 1 agents" in busy.text and not toast(busy)  # the API's sentence, in the dialog


async def test_presets_crud_and_images_on_the_environments_page(system, admin):
    images = await admin.get("/environments")
    assert images.status_code == 200
    row = re.search(r'<tr data-image="localhost/workbay/python:3.11">.*?</tr>', images.text, re.S).group(0)
    assert "installed" in row and "x86_64" in row
    empty = await admin.get("/environments", tab="presets", q="zzz-none")
    assert "No item matches the filter." in empty.text
    dialog = await admin.get("/environments/presets/new", htmx=True)
    assert 'id="preset-name"' in dialog.text and 'id="preset-mem"' in dialog.text and 'id="preset-resource_group"' in dialog.text
    bad = await admin.post("/environments/presets", {"name": "", "cpu": "0", "mem": "lots", "shared_memory": "1x"})
    assert "Name is required." in bad.text and "Enter a number of cores greater than 0." in bad.text
    assert "Enter a memory size such as 512m" in bad.text and not toast(bad)
    too_big = await admin.post("/environments/presets", {"name": "tiny", "cpu": "1", "mem": "256m", "shared_memory": "1g"})
    assert "Shared memory cannot exceed the memory size." in too_big.text
    made = await admin.post("/environments/presets", {"name": "cpu-small", "cpu": "1", "mem": "1.5g",
                                                      "shared_memory": "64m", "resource_group": "default"})
    assert toast(made) == "Preset cpu-small was created."
    dup = await admin.post("/environments/presets", {"name": "cpu-small", "cpu": "1", "mem": "1g"})
    assert "already exists" in dup.text
    page = await admin.get("/environments", tab="presets")
    row = re.search(r'<tr data-preset="cpu-small">.*?</tr>', page.text, re.S).group(0)
    assert "1.5 GiB" in row and "64 MiB" in row and "default" in row
    edit = await admin.get("/environments/presets/cpu-small/edit", htmx=True)
    assert 'value="1.5g"' in edit.text or 'value="1536m"' in edit.text
    changed = await admin.post("/environments/presets/cpu-small", {"cpu": "2", "mem": "2g", "shared_memory": "",
                                                                   "resource_group": ""})
    assert toast(changed) == "Preset cpu-small was updated."
    presets = (await system.manager.admin().get("/admin/resource-presets"))["items"]
    preset = next(p for p in presets if p["name"] == "cpu-small")
    assert preset["resource_slots"]["cpu"] == "2" and preset["resource_slots"]["mem"] == str(2 << 30)
    assert preset["shared_memory"] is None and preset["resource_group"] is None
    confirm = await admin.get("/environments/presets/cpu-small/delete", htmx=True)
    assert "Delete the preset cpu-small?" in confirm.text
    gone = await admin.post("/environments/presets/cpu-small/delete")
    assert toast(gone) == "Preset cpu-small was deleted."
    assert "No resource presets yet." in (await admin.get("/environments", tab="presets")).text


async def test_maintenance_recalculates_as_a_background_task(admin):
    page = await admin.get("/maintenance")
    assert page.status_code == 200 and "Recalculate usage" in page.text and "Rescan images" in page.text
    started = await admin.post("/maintenance/recalculate")
    events = trigger(started)
    task_id = events["wb:bgtask"]["task_id"]
    assert events["wb:bgtask"]["title"] == "Recalculate usage" and f'data-task-id="{task_id}"' in started.text
    for _ in range(50):
        progress = await admin.get(f"/maintenance/tasks/{task_id}", htmx=True)
        if 'data-status="done"' in progress.text:
            break
    assert 'data-status="done"' in progress.text and "Recalculated the usage of" in progress.text
    assert trigger(progress).get("wb:changed") is True
    tasks = await admin.get("/maintenance/tasks", htmx=True)
    assert f'data-task-id="{task_id}"' in tasks.text and "Done" in tasks.text
    rescan = await admin.post("/maintenance/rescan-images")
    assert toast(rescan).startswith("Images rescanned. Agents: ")  # this test's agent does not answer: a warning
    assert "no answer from" in toast(rescan)


async def test_domain_admins_read_but_do_not_edit(system):
    email = await new_user(system, "dadmin", role="admin")
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        a = await Browser(client).login(email, PASSWORD)
        agents = await a.get("/resources", tab="agents")
        assert agents.status_code == 200
        row = re.search(rf'<tr data-agent="{AGENT}">.*?</tr>', agents.text, re.S).group(0)
        assert re.search(r'data-testid="schedulable-switch" checked disabled', row)
        groups = await a.get("/resources", tab="resource-groups")
        assert "Create resource group" not in groups.text and "Read only" in groups.text
        presets = await a.get("/environments", tab="presets")
        assert presets.status_code == 200 and "Create preset" not in presets.text
        assert (await a.get("/maintenance")).status_code == 403
        assert 'href="/maintenance"' not in presets.text
        refused = await a.post("/environments/presets", {"name": "x", "cpu": "1", "mem": "1g"})
        assert "insufficient" in refused.text.lower() or "privilege" in refused.text.lower()


async def test_korean_pages_are_translated(system):
    email = await new_user(system, "ko")
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        b = await Browser(client).login(email, PASSWORD)
        await b.post("/preferences", {"language": "ko"})
        home = await b.get("/start")
        assert "대화형 세션 시작" in home.text
        cards = await b.get("/summary/resources", htmx=True)
        assert "자원 사용량" in cards.text and "시스템 자원" in cards.text
        agents = await b.get("/agent-summary")
        assert "연결됨" in agents.text
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        a = await Browser(client).login(ADMIN, ADMIN_PASSWORD)
        await a.post("/preferences", {"language": "ko"})
        try:
            for url, text in (("/resources?tab=agents", "스케줄 가능"), ("/resources?tab=resource-groups", "스케줄러"),
                              ("/environments?tab=presets", "자원 프리셋"), ("/maintenance", "사용량 재계산")):
                assert text in (await a.get(url)).text, url
        finally:
            await a.post("/preferences", {"language": "en"})


async def test_image_minimum_resources_and_the_summary_switcher_url(system, admin, user):
    image = "localhost/workbay/python:3.11"
    page = await admin.get("/environments")
    assert 'hx-get="/environments/images/edit?ref=localhost/workbay/python%3A3.11"' in page.text
    dialog = await admin.get("/environments/images/edit", htmx=True, ref=image)
    assert 'id="image-cpu"' in dialog.text and image in dialog.text
    bad = await admin.post("/environments/images/min-resources", {"ref": image, "cpu": "-1", "mem": "much"})
    assert "Enter a number of cores greater than 0." in bad.text and "Enter a memory size" in bad.text
    ok = await admin.post("/environments/images/min-resources", {"ref": image, "cpu": "1", "mem": "384m"})
    assert toast(ok) == f"The minimum resources of {image} were saved."
    images = (await system.manager.admin().get("/images"))["items"]
    assert next(i for i in images if i["name"] == image)["min_slots"]["mem"] == str(384 << 20)
    assert "384 MiB" in (await admin.get("/environments")).text
    unknown = await admin.get("/environments/images/edit", htmx=True, ref="nope:1")
    assert trigger(unknown)["wb:toast"]["level"] == "danger"
    assert (await user.get("/environments/images/edit", ref=image)).status_code == 403
    assert (await user.post("/environments/images/min-resources", {"ref": image, "cpu": "9"})).status_code == 403
    summary = await user.get("/summary", resource_group="default")
    assert 'hx-get="/summary/resources?resource_group=default"' in summary.text
    cards = await user.get("/summary/resources", htmx=True, resource_group="default")
    assert 'data-wb-url-param="resource_group"' in cards.text
