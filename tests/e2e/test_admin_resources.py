"""Compute pages with real containers (manager, storage-proxy, one agent with Podman holding cpu=2,
webserver): the admin makes the agent unschedulable on the Resources page's Agents tab and a new
session (created through the API) stays PENDING with the reason in its status details, then makes
it schedulable again and the session starts; preset CRUD on the Environments page; resource group
create / edit / delete; Maintenance's "Recalculate usage" with its progress in the bell; a user's
Summary (usage against limits, system resources), Home and Agent Summary; Korean pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.support import LoginPage, Shell, Workbay, container_system, workbay_of
from tests.support.sessions import ADMIN_PASSWORD, DEMO_PASSWORD, IMAGE, SMALL, System, wait_for
from workbay.client.sdk import Client

pytestmark = pytest.mark.timeout(300)
USER = "user@workbay.local"
ADMIN = "admin@workbay.local"
LIVE_WAIT = 60_000  # ms: a container start on a busy machine


@pytest.fixture(scope="module")
async def system(tmp_path_factory) -> AsyncIterator[System]:
    async with container_system(tmp_path_factory.mktemp("e2e-compute"), "compute page journeys", cpu="2") as sysm:
        yield sysm


@pytest.fixture(scope="module")
def workbay(system: System) -> Workbay:
    return workbay_of(system)


@pytest.fixture(scope="module")
async def user_api(system: System) -> Client:
    return await system.login(USER, DEMO_PASSWORD)


@pytest.fixture(autouse=True)
async def clean(system: System):
    yield
    await system.admin.patch(f"/admin/agents/{system.agent_id}", json={"schedulable": True})
    await system.terminate_all()


async def create(api: Client, name: str) -> dict:
    return await api.post("/session", json={"image": IMAGE, "name": name, "enqueueOnly": True,
                                            "config": {"resources": SMALL}})


async def status_of(api: Client, name: str) -> str:
    return (await api.get(f"/session/{name}"))["status"]


async def admin_page(page: Page, tab: str) -> None:
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    await page.locator("#wb-sidebar").get_by_role("link", name="Resources").click()
    await page.wait_for_url("**/resources")
    await page.get_by_role("link", name=tab, exact=True).click()


async def test_unschedulable_agent_keeps_a_new_session_pending_until_it_is_schedulable(
        page: Page, system: System, user_api: Client, shots):
    shell = Shell(page)
    await admin_page(page, "Agents")
    await page.wait_for_url("**/resources?tab=agents")
    row = page.locator(f'#agent-table tr[data-agent="{system.agent_id}"]')
    await expect(row).to_contain_text("Running")
    await expect(row.get_by_test_id("allocation")).to_contain_text("0 / 2")
    switch = row.get_by_test_id("schedulable-switch")
    await expect(switch).to_be_checked()
    await shots.take(page, "compute-01-agents")
    await page.evaluate("window.__noReload = true")
    await switch.click()
    await shell.toast(f"Agent {system.agent_id} takes no new sessions; its running sessions keep running.")
    await expect(row.get_by_test_id("schedulable-switch")).not_to_be_checked()

    await create(user_api, "e2e-unsched")

    async def tried():
        history = await user_api.get("/session/e2e-unsched/status-history")
        return (history.get("scheduling") or {}).get("retries", 0) >= 1
    await wait_for(tried, 60, "the scheduler tried the session")
    assert await status_of(user_api, "e2e-unsched") == "PENDING"
    # the admin sees every session: PENDING, and the "?" says why
    await page.locator("#wb-sidebar").get_by_role("link", name="Sessions").click()
    session_row = page.locator('#session-table tr[data-session-name="e2e-unsched"]')
    await expect(session_row.get_by_test_id("session-status")).to_have_text("PENDING")
    await session_row.get_by_role("button", name="Status details of e2e-unsched").click()
    details = page.get_by_test_id("status-details")  # a popover next to the "?"
    failed = details.locator('[data-predicate][data-passed="false"]')
    await expect(failed.first).to_contain_text("schedulable", timeout=20_000)
    await shots.take(page, "compute-02-pending-unschedulable")
    await page.keyboard.press("Escape")

    # schedulable again: the session starts
    await page.goto("/resources?tab=agents")
    row = page.locator(f'#agent-table tr[data-agent="{system.agent_id}"]')
    await row.get_by_test_id("schedulable-switch").click()
    await shell.toast(f"Agent {system.agent_id} takes new sessions again.")
    await expect(row.get_by_test_id("schedulable-switch")).to_be_checked()
    await wait_for(lambda: _running(user_api, "e2e-unsched"), 90, "the session runs")
    # the allocation bar and the live-usage dialog follow without a reload
    await expect(row.get_by_test_id("allocation")).to_contain_text("1 / 2", timeout=30_000)
    await row.get_by_role("button", name=f"Live usage {system.agent_id}").click()
    dialog = shell.dialog()
    await expect(dialog.get_by_test_id("agent-detail")).to_contain_text("e2e-unsched")
    await shots.take(page, "compute-03-agent-live-usage")


async def _running(api: Client, name: str):
    return await status_of(api, name) == "RUNNING"


async def test_preset_crud_on_the_environments_page(page: Page, system: System, shots):
    shell = Shell(page)
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    await page.locator("#wb-sidebar").get_by_role("link", name="Environments").click()
    await page.wait_for_url("**/environments")
    image = page.locator(f'#images-table tr[data-image="{IMAGE}"]')
    await expect(image).to_contain_text("installed")
    await shots.take(page, "compute-10-images")
    await page.get_by_role("link", name="Resource Presets").click()
    await page.wait_for_url("**/environments?tab=presets")
    await page.get_by_role("button", name="Create preset").first.click()
    dialog = shell.dialog()
    await dialog.locator("#preset-name").fill("e2e-small")
    await dialog.locator("#preset-cpu").fill("0")
    await dialog.locator("#preset-mem").fill("lots")
    await dialog.locator("#preset-mem").press("Enter")  # forms submit with Enter
    await expect(dialog.locator("#preset-cpu-error")).to_have_text("Enter a number of cores greater than 0.")
    await expect(dialog.locator("#preset-mem-error")).to_contain_text("512m")
    await shots.take(page, "compute-11-preset-errors")
    await dialog.locator("#preset-cpu").fill("1")
    await dialog.locator("#preset-mem").fill("512m")
    await dialog.locator("#preset-shared_memory").fill("64m")
    await dialog.get_by_role("button", name="Create").click()
    await shell.toast("Preset e2e-small was created.")
    await shell.dialog_closed()
    row = page.locator('#presets-table tr[data-preset="e2e-small"]')
    await expect(row.get_by_test_id("preset-resources")).to_contain_text("512 MiB")
    await shots.take(page, "compute-12-presets")
    await row.get_by_role("button", name="Edit e2e-small").click()
    dialog = shell.dialog()
    await expect(dialog.locator("#preset-name")).to_have_attribute("readonly", "")
    await dialog.locator("#preset-cpu").fill("2")
    await dialog.get_by_role("button", name="Save").click()
    await shell.toast("Preset e2e-small was updated.")
    await expect(row.get_by_test_id("preset-resources")).to_contain_text("2 Core")
    presets = (await system.admin.get("/resource/presets"))["presets"]
    assert next(p for p in presets if p["name"] == "e2e-small")["resource_slots"]["cpu"] == "2"
    await row.get_by_role("button", name="Delete e2e-small").click()
    dialog = shell.dialog()
    await dialog.get_by_role("button", name="Delete").click()
    await shell.toast("Preset e2e-small was deleted.")
    await expect(row).to_have_count(0)


async def test_resource_group_create_edit_delete(page: Page, system: System, shots):
    shell = Shell(page)
    await admin_page(page, "Resource Groups")
    await page.wait_for_url("**/resources?tab=resource-groups")
    await expect(page.locator('#group-table tr[data-group="default"]')).to_be_visible()
    await page.get_by_role("button", name="Create resource group").first.click()
    dialog = shell.dialog()
    await dialog.locator("#rg-name").fill("e2e-night")
    await dialog.locator("#rg-description").fill("Night batch jobs")
    await dialog.locator("#rg-scheduler").select_option("drf")
    await dialog.locator("#rg-type-interactive").uncheck()
    await dialog.locator("#rg-type-batch").uncheck()
    await dialog.get_by_role("button", name="Create").click()
    await expect(dialog.locator("#rg-allowed_session_types-error")).to_have_text("Allow at least one session type.")
    await dialog.locator("#rg-type-batch").check()
    await dialog.locator("#rg-pending_timeout").fill("600")
    await shots.take(page, "compute-20-resource-group-create")
    await dialog.get_by_role("button", name="Create").click()
    await shell.toast("Resource group e2e-night was created.")
    row = page.locator('#group-table tr[data-group="e2e-night"]')
    await expect(row.get_by_test_id("scheduler")).to_have_text("drf")
    await expect(row).to_contain_text("00:10:00")
    await shots.take(page, "compute-21-resource-groups")
    await row.get_by_role("button", name="Edit e2e-night").click()
    dialog = shell.dialog()
    await dialog.locator("#rg-scheduler").select_option("lifo")
    await dialog.get_by_role("button", name="Save").click()
    await shell.toast("Resource group e2e-night was updated.")
    await expect(row.get_by_test_id("scheduler")).to_have_text("lifo")
    await row.get_by_role("button", name="Delete e2e-night").click()
    dialog = shell.dialog()
    delete = dialog.get_by_role("button", name="Delete")
    await expect(delete).to_be_disabled()  # permanent: type the name
    await dialog.locator("#confirm-input").fill("e2e-night")
    await delete.click()
    await shell.toast("Resource group e2e-night was deleted.")
    await expect(row).to_have_count(0)
    groups = [g["name"] for g in (await system.admin.get("/admin/resource-groups"))["items"]]
    assert "e2e-night" not in groups


async def test_recalculate_usage_shows_progress_then_done_in_the_bell(page: Page, shots):
    shell = Shell(page)
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    await page.locator("#wb-sidebar").get_by_role("link", name="Maintenance").click()
    await page.wait_for_url("**/maintenance")
    await page.get_by_role("button", name="Recalculate usage").click()
    await shell.toast(re.compile("Recalculating the usage started"))
    progress = page.get_by_test_id("task-progress")
    await expect(progress).to_have_attribute("data-status", "done", timeout=30_000)
    await expect(progress).to_contain_text("Recalculated the usage of 1 agents.")
    await expect(page.locator("#task-table")).to_contain_text("Done")
    await page.locator("#wb-bell").click()
    item = page.locator("#wb-bell-list li[data-task-id]").first
    await expect(item).to_contain_text("Recalculate usage")
    await expect(item).to_contain_text("Done")
    await expect(page.locator("#wb-bell-list li[data-task-id]")).to_have_count(1)  # one item per task
    await shots.take(page, "compute-30-maintenance-bell")


async def test_summary_home_and_agent_summary_of_a_user(page: Page, system: System, user_api: Client, shots):
    await create(user_api, "e2e-summary")
    await wait_for(lambda: _running(user_api, "e2e-summary"), 90, "the session runs")
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")
    usage = page.get_by_test_id("resource-usage")
    await expect(usage).to_contain_text("Resource usage")
    await expect(usage.get_by_test_id("limit-cpu")).to_contain_text(re.compile(r"^1 / "))
    await expect(usage.get_by_test_id("limit-mem")).to_contain_text("256 MiB / ")
    await expect(usage.get_by_test_id("my-sessions")).to_contain_text(re.compile(r"^1 / "))
    await expect(page.locator("#summary-rg")).to_have_value("default")
    await page.locator("#summary-rg").select_option("default")  # the switcher keeps its choice in the URL
    await expect(page).to_have_url(re.compile(r"/summary\?resource_group=default$"))
    await expect(page.get_by_test_id("resource-usage").get_by_test_id("my-sessions")).to_contain_text(re.compile(r"^1 / "))
    system_card = page.get_by_test_id("system-resources")
    await expect(system_card.get_by_test_id("stat-running")).to_contain_text("1")
    await expect(system_card.get_by_test_id("stat-running")).to_contain_text("Your running sessions")
    await expect(system_card.get_by_test_id("rg-allocation")).to_contain_text("1 / 2")
    await expect(system_card.get_by_test_id("rg-utilization")).to_contain_text(re.compile(r"Memory\s*\d+(\.\d)?%"))
    await shots.take(page, "compute-40-summary")
    await page.locator("#wb-sidebar").get_by_role("link", name="Home").click()
    await page.wait_for_url("**/start")
    await expect(page.get_by_test_id("quick-interactive")).to_have_attribute("href", "/session/start")
    await shots.take(page, "compute-41-home")
    await page.locator("#wb-sidebar").get_by_role("link", name="Agent Summary").click()
    await page.wait_for_url("**/agent-summary")
    row = page.locator(f'#agent-summary-table tr[data-agent="{system.agent_id}"]')
    await expect(row.locator("[data-col=allocation]")).to_contain_text("1 / 2")
    assert "127.0.0.1:" not in await row.inner_text()  # no addresses for users
    await shots.take(page, "compute-42-agent-summary")
    assert await page.locator('#wb-sidebar a[href="/resources"]').count() == 0


async def test_korean_pages(browser: Browser, workbay: Workbay, system: System, shots):
    ctx = await browser.new_context(base_url=workbay.url, viewport={"width": 1360, "height": 860},
                                    locale="ko-KR", reduced_motion="reduce")
    ctx.set_default_timeout(10_000)
    try:
        page = await ctx.new_page()
        await LoginPage(page).open()
        await page.fill("#login-username", USER)
        await page.fill("#login-password", DEMO_PASSWORD)
        await page.get_by_role("button", name=re.compile("^(Log in|로그인)$")).click()
        await page.wait_for_url("**/summary")
        await expect(page.get_by_test_id("resource-usage")).to_contain_text("자원 사용량")
        await expect(page.get_by_test_id("system-resources")).to_contain_text("시스템 자원")
        await shots.take(page, "compute-50-summary-ko")
        await page.goto("/start")
        await expect(page.get_by_test_id("quick-actions")).to_contain_text("대화형 세션 시작")
        await shots.take(page, "compute-51-home-ko")
        await page.goto("/agent-summary")
        await expect(page.locator("#agent-summary-list")).to_contain_text("스케줄 가능")
        await shots.take(page, "compute-52-agent-summary-ko")
        await ctx.clear_cookies()
        await LoginPage(page).open()
        await page.fill("#login-username", ADMIN)
        await page.fill("#login-password", ADMIN_PASSWORD)
        await page.get_by_role("button", name=re.compile("^(Log in|로그인)$")).click()
        await page.wait_for_url("**/users")
        await page.goto("/resources?tab=agents")
        await expect(page.locator("#agents-list")).to_contain_text("사용률")
        await shots.take(page, "compute-53-agents-ko")
        await page.goto("/environments?tab=presets")
        await expect(page.locator(".wb-tabs")).to_contain_text("자원 프리셋")
        await page.goto("/maintenance")
        await expect(page.locator("main")).to_contain_text("사용량 재계산")
        await shots.take(page, "compute-54-maintenance-ko")
    finally:
        await ctx.close()
