"""Sessions page journeys with real containers (manager, agent with Podman, webserver; the agent
holds cpu=2, so exactly two small sessions fit): a user sees a session RUNNING, reads and searches
its logs, renames it, terminates it and finds it under Finished with its reason; the guide's queue
example (23.2) where the third session waits with the failed predicate shown and starts once one
is terminated, without reloading the page; a batch session ending by itself with success; a
cluster session's two containers in the detail drawer; the admin's owner column and CSV export;
the page in Korean.  Sessions are created through the API as user@workbay.local."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.support import LoginPage, Shell, Workbay, container_system, workbay_of
from tests.support.sessions import (
    ADMIN_PASSWORD,
    DEMO_PASSWORD,
    IMAGE,
    SMALL,
    System,
    wait_for,
)
from workbay.client.sdk import Client

pytestmark = pytest.mark.timeout(300)
USER = "user@workbay.local"
ADMIN = "admin@workbay.local"
LIVE_WAIT = 60_000  # ms: a container start on a busy machine


@pytest.fixture(scope="module")
async def system(tmp_path_factory) -> AsyncIterator[System]:
    async with container_system(tmp_path_factory.mktemp("e2e-sessions"), "session page journeys", cpu="2") as sysm:
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
    await system.terminate_all()


async def create(api: Client, name: str, **body) -> dict:
    body.setdefault("config", {"resources": SMALL})
    return await api.post("/session", json={"image": IMAGE, "name": name, "enqueueOnly": True, **body})


class SessionsPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.shell = Shell(page)
        self.list = page.locator("#sessions-list")

    async def open(self, query: str = "") -> SessionsPage:
        await self.page.goto("/sessions" + query)
        return self

    def popover(self):
        """The status details popover next to a "?"."""
        return self.page.locator("body > .wb-status-popover")

    def row(self, name: str):
        return self.page.locator(f'#session-table tr[data-session-name="{name}"]')

    async def tab(self, key: str) -> None:
        await self.list.locator(f'a[data-tab="{key}"]').click()
        await expect(self.list).to_have_attribute("data-tab", key)

    async def status_of(self, name: str, status: str, timeout: int = LIVE_WAIT) -> None:
        await expect(self.row(name).get_by_test_id("session-status")).to_have_text(status, timeout=timeout)


async def log_in(page: Page, email: str, password: str, landing: str) -> SessionsPage:
    await LoginPage(page).log_in(email, password, landing)
    await page.locator("#wb-sidebar").get_by_role("link", name="Sessions").click()
    await page.wait_for_url("**/sessions")
    return SessionsPage(page)


async def test_run_logs_rename_terminate_and_finished(page: Page, user_api: Client, shots):
    sp = await log_in(page, USER, DEMO_PASSWORD, "/summary")
    await expect(sp.list).to_contain_text("No active sessions.")
    await shots.take(page, "60-sessions-empty")
    await create(user_api, "e2e-first")
    # the list picks the new session up and follows it to RUNNING without a reload
    await page.evaluate("window.__noReload = true")
    await sp.status_of("e2e-first", "RUNNING")
    row = sp.row("e2e-first")
    await expect(row.locator("[data-col=usage]")).to_contain_text("CPU", timeout=20_000)
    assert await page.evaluate("window.__noReload === true")
    await expect(page.get_by_test_id("session-stats")).to_contain_text("Resource statistics")
    await shots.take(page, "61-sessions-running")

    # logs (CS-18): search with a match count, next/previous, refresh
    await row.get_by_role("button", name="Logs of e2e-first").click()
    dialog = sp.shell.dialog()
    await expect(dialog.locator("#session-log")).to_contain_text("kernel ready", timeout=20_000)
    await dialog.locator("#log-search").fill("kernel ready")
    await expect(dialog.locator("#log-matches")).to_contain_text(re.compile(r"^(1 match|\d+ / \d+ matches)$"))
    await expect(dialog.locator("#session-log mark.wb-current")).to_have_count(1)
    await dialog.locator("#log-search").fill("workbay-runner")
    await expect(dialog.locator("#session-log mark").first).to_be_visible()
    assert await dialog.locator("#session-log mark").count() >= 1
    await dialog.locator("#log-next").click()
    await dialog.locator("#log-prev").click()
    await dialog.locator("#log-search").fill("no-such-text-anywhere")
    await expect(dialog.locator("#log-matches")).to_have_text("0 matches")
    await dialog.locator("#log-search").fill("kernel ready")
    await dialog.locator("#log-refresh").click()
    await expect(dialog.locator("#session-log mark").first).to_be_visible()  # the search survives a refresh
    await shots.take(page, "62-sessions-logs")
    await dialog.get_by_role("button", name="Close").first.click()
    await sp.shell.dialog_closed()

    # rename in place (CS-16): the rules first, then the new name
    await row.get_by_role("button", name="Rename e2e-first").click()
    field = page.locator("#sessions-list .wb-editing input[name=name]")
    await expect(field).to_be_focused()
    await field.fill("no")
    await field.press("Enter")
    await expect(page.locator(".wb-editing .invalid-feedback")).to_contain_text("4 to 64 characters")
    await shots.take(page, "63-sessions-rename-error")
    await page.locator(".wb-editing input[name=name]").fill("e2e-renamed")
    await page.locator(".wb-editing input[name=name]").press("Enter")
    await sp.shell.toast("The session was renamed to e2e-renamed.")
    await expect(sp.row("e2e-renamed")).to_have_count(1)

    # terminate (CS-17) with a confirmation naming the session
    await sp.row("e2e-renamed").get_by_role("button", name="Terminate e2e-renamed").click()
    dialog = sp.shell.dialog()
    await expect(dialog).to_contain_text("Terminate e2e-renamed?")
    await shots.take(page, "64-sessions-terminate")
    await dialog.get_by_role("button", name="Terminate").click()
    await sp.shell.toast("Session e2e-renamed is terminating.")
    await expect(sp.row("e2e-renamed")).to_have_count(0, timeout=LIVE_WAIT)
    await sp.tab("finished")
    await sp.status_of("e2e-renamed", "TERMINATED")
    await expect(sp.row("e2e-renamed").locator("[data-col=status]")).to_contain_text("user-requested")
    await sp.row("e2e-renamed").get_by_role("button", name="Status details of e2e-renamed").click()
    popover = sp.popover()
    await expect(popover.get_by_test_id("status-termination")).to_contain_text("user-requested")
    await expect(popover).to_be_focused()
    await shots.take(page, "65-sessions-finished-status")
    await page.keyboard.press("Escape")
    await expect(popover).to_have_count(0)
    await expect(page.get_by_role("button", name="Status details of e2e-renamed")).to_be_focused()
    assert await page.evaluate("window.__noReload === true")


async def test_queue_example_pending_explained_then_started(page: Page, user_api: Client, shots):
    """Guide 23.2: three sessions where two fit; the third waits, "?" says why, and it starts
    once one of the running ones is terminated — the list follows without a reload."""
    sp = await log_in(page, USER, DEMO_PASSWORD, "/summary")
    await page.evaluate("window.__noReload = true")
    await create(user_api, "queue", count=3)
    names = ["queue-1", "queue-2", "queue-3"]
    for name in names:
        await expect(sp.row(name)).to_have_count(1, timeout=LIVE_WAIT)

    async def two_running():
        statuses = [await sp.row(n).get_by_test_id("session-status").inner_text() for n in names]
        return statuses.count("RUNNING") == 2 and statuses.count("PENDING") == 1 and statuses
    statuses = await wait_for(two_running, 90, "two sessions run and one waits", interval=0.5)
    waiting = names[statuses.index("PENDING")]
    running = [n for n in names if n != waiting]
    await expect(sp.row(waiting).locator("[data-col=status]")).to_contain_text("pending")
    await shots.take(page, "66-sessions-queue")
    await sp.row(waiting).get_by_role("button", name=f"Status details of {waiting}").click()
    popover = sp.popover()
    failed = popover.locator('[data-predicate][data-passed="false"]')
    await expect(failed.first).to_be_visible(timeout=20_000)
    assert await failed.count() >= 1
    await expect(popover.get_by_test_id("retries")).not_to_have_text("0")
    await shots.take(page, "67-sessions-pending-why")
    await popover.get_by_role("button", name="Close").click()
    await expect(popover).to_have_count(0)

    # bulk terminate with one selected row
    await sp.row(running[0]).locator("[data-session-select]").check()
    await expect(page.locator("#session-selected-count")).to_have_text("1")
    await page.locator("#session-bulk-terminate").click()
    dialog = sp.shell.dialog()
    await expect(dialog).to_contain_text(f"Terminate {running[0]}?")
    await dialog.get_by_role("button", name="Terminate").click()
    await expect(sp.row(running[0])).to_have_count(0, timeout=LIVE_WAIT)
    await sp.status_of(waiting, "RUNNING", timeout=90_000)
    await expect(page.locator("#session-bulk-terminate")).to_be_disabled()
    await shots.take(page, "68-sessions-queue-started")
    assert await page.evaluate("window.__noReload === true")


async def test_batch_session_ends_by_itself_with_success(page: Page, user_api: Client, system: System):
    await create(user_api, "e2e-batch", type="batch", startupCommand="echo batch-done")
    sp = await log_in(page, USER, DEMO_PASSWORD, "/summary")
    await sp.tab("finished")
    await sp.status_of("e2e-batch", "TERMINATED", timeout=90_000)
    row = sp.row("e2e-batch")
    await expect(row.get_by_test_id("session-result")).to_have_text("success")
    await expect(row.locator("[data-col=type]")).to_contain_text("batch")
    await row.get_by_role("button", name="Logs of e2e-batch").click()
    await expect(sp.shell.dialog().locator("#session-log")).to_contain_text("batch-done", timeout=20_000)


async def test_cluster_session_shows_two_containers(page: Page, user_api: Client, system: System, shots):
    await system.admin.patch("/admin/resource-policies/keypair/default", json={"max_containers_per_session": 2})
    await create(user_api, "e2e-cluster", clusterSize=2, clusterMode="single-node")
    sp = await log_in(page, USER, DEMO_PASSWORD, "/summary")
    await sp.status_of("e2e-cluster", "RUNNING", timeout=90_000)
    await sp.row("e2e-cluster").get_by_test_id("session-name").click()
    drawer = page.locator("#session-drawer.show")
    await expect(drawer).to_be_visible()
    kernels = drawer.locator("#session-kernels tbody tr")
    await expect(kernels).to_have_count(2)
    await expect(kernels.nth(0)).to_contain_text("main")
    await expect(kernels.nth(1)).to_contain_text("sub1")
    await expect(kernels.locator(".wb-status", has_text="RUNNING")).to_have_count(2)
    await shots.take(page, "69-sessions-detail-drawer")
    await drawer.get_by_role("button", name="Close").click()
    await expect(page.locator("#session-drawer")).to_have_count(0)
    # the logs of the sub container
    await sp.row("e2e-cluster").get_by_role("button", name="Logs of e2e-cluster").click()
    dialog = sp.shell.dialog()
    await dialog.locator("#log-kernel").select_option(index=1)
    await expect(dialog.locator("#session-log")).to_contain_text("kernel ready", timeout=20_000)


async def test_admin_sees_owners_and_exports_csv(page: Page, user_api: Client, shots):
    await create(user_api, "e2e-owned")
    sp = await log_in(page, ADMIN, ADMIN_PASSWORD, "/users")
    await expect(sp.row("e2e-owned")).to_have_count(1, timeout=LIVE_WAIT)
    await expect(sp.row("e2e-owned").locator("[data-col=owner]")).to_have_text(USER)
    await expect(page.locator("#session-table thead")).to_contain_text("Owner")
    await shots.take(page, "70-sessions-admin")
    await page.get_by_role("button", name="Export CSV").click()
    dialog = sp.shell.dialog()
    await dialog.locator("#export-filename").fill("e2e-export")
    async with page.expect_download() as info:
        await dialog.get_by_role("button", name="Export").click()
    download = await info.value
    assert download.suggested_filename == "e2e-export.csv"
    table = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text(encoding="utf-8-sig"))))
    assert any(r["name"] == "e2e-owned" and r["owner_email"] == USER for r in table)
    # "Mine" hides the owner column and other users' sessions
    await page.locator("label[for=session-scope-mine]").click()
    await expect(sp.row("e2e-owned")).to_have_count(0)
    await expect(page.locator("#session-table thead th[data-col=owner]")).to_have_count(0)


async def test_korean_page(browser: Browser, workbay: Workbay, user_api: Client, shots):
    await create(user_api, "e2e-korean")
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
        await page.goto("/sessions")
        list_ = page.locator("#sessions-list")
        await expect(list_).to_contain_text("실행 중")
        await expect(list_).to_contain_text("업로드 세션")
        await expect(page.locator('#session-table tr[data-session-name="e2e-korean"] [data-testid=session-status]')
                     ).to_have_text("RUNNING", timeout=LIVE_WAIT)
        await expect(page.get_by_test_id("session-stats")).to_contain_text("자원 통계")
        await shots.take(page, "71-sessions-ko")
        await page.locator('#session-table tr[data-session-name="e2e-korean"]').get_by_test_id("session-name").click()
        await expect(page.locator("#session-drawer.show")).to_contain_text("컨테이너")
        await shots.take(page, "72-sessions-ko-drawer")
    finally:
        await ctx.close()
