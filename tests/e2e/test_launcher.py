"""NEO session launcher journeys with real containers (manager, storage-proxy, agent with Podman,
webserver): user@workbay.local goes through every step with a mounted folder (one made through
the API, one made with the launcher's "+") and an environment variable, checks that reload and
back/forward keep the form, launches, lands on the sessions list where the bell follows the session
to RUNNING and the app launcher opens by itself, and the API confirms the folder is mounted and the variable set; recent history brings
the launch back to review; review shows validation errors on the cards and the no-mount warning;
an admin starts a session for another user; the launcher in Korean."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.support import LoginPage, Shell, Workbay, container_system, workbay_of
from tests.support.sessions import ADMIN_PASSWORD, DEMO_PASSWORD, IMAGE, System, wait_for
from workbay.client.sdk import Client

pytestmark = pytest.mark.timeout(300)
USER = "user@workbay.local"
USER2 = "user2@workbay.local"
ADMIN = "admin@workbay.local"
LIVE_WAIT = 90_000  # ms: a container start on a busy machine


@pytest.fixture(scope="module")
async def system(tmp_path_factory) -> AsyncIterator[System]:
    async with container_system(tmp_path_factory.mktemp("e2e-launcher"), "launcher journeys", cpu="2") as sysm:
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


class Launcher:
    """The launcher page: steps, the rail, the review cards."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.shell = Shell(page)

    async def open(self, query: str = "") -> Launcher:
        await self.page.goto("/session/start" + query)
        await expect(self.page.locator("#launcher")).to_be_visible()
        return self

    def step(self, n: int):
        return self.page.locator(f"#step-{n}")

    async def at(self, n: int) -> None:
        await expect(self.page.locator("#launcher")).to_have_attribute("data-step", str(n))
        await expect(self.page).to_have_url(re.compile(rf"step={n}"))

    async def next(self, expected: int) -> None:
        await self.page.locator(".wb-launcher-actions").get_by_role("button", name="Next").click()
        await self.at(expected)

    def card(self, n: int):
        return self.page.get_by_test_id(f"review-{n}")


async def shell_out(api: Client, sid: str, command: str) -> tuple[str, int | None]:
    result = (await api.post(f"/session/{sid}", json={
        "mode": "batch", "runId": "", "code": "", "options": {"exec": command}}))["result"]
    out = "".join(d for t, d in result["console"] if t == "stdout")
    while result["status"] in ("continued", "clean-finished", "build-finished"):
        result = (await api.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"],
                                                          "code": ""}))["result"]
        out += "".join(d for t, d in result["console"] if t == "stdout")
    return out, result.get("exitCode")


async def test_user_launches_through_every_step(page: Page, user_api: Client, system: System, shots):
    folder = f"e2e-data-{uuid.uuid4().hex[:6]}"
    made_here = f"e2e-new-{uuid.uuid4().hex[:6]}"
    await user_api.post("/folders", json={"name": folder})
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")
    await page.locator("#wb-sidebar").get_by_role("link", name="Start").click()
    await page.wait_for_url("**/session/start")
    la = Launcher(page)

    # 1 session type
    await expect(page.locator(".wb-rail [aria-current=step]")).to_contain_text("Session type")
    await page.locator("#l-name").fill("e2e-launch")
    await shots.take(page, "launcher-01-1-type")
    await page.locator("label[for=l-type-batch]").click()
    await expect(page.locator("#batch-config")).to_be_visible()
    await page.locator("#l-sched").check()
    await expect(page.locator("#l-starts-preview")).to_contain_text(re.compile(r"in \d+ (minute|second)s?|in a minute"))
    await shots.take(page, "launcher-02-1-batch")
    await page.locator("#l-sched").uncheck()
    await page.locator("label[for=l-type-interactive]").click()
    await expect(page.locator("#batch-config")).to_be_hidden()
    await page.locator("#l-name").press("Enter")  # keyboard: Enter goes to the next step
    await la.at(2)

    # 2 environments & resources
    await page.locator("#l-version").select_option(IMAGE)
    await page.locator("#l-cpu").fill("1")
    await page.locator("#l-mem").fill("0.25")
    await expect(page.locator("#l-mem-range")).to_have_value("0.25")
    await page.locator("#l-shmem").fill("0.0625")
    await page.locator("#env-vars input[name=ev_k]").first.fill("WB_GREETING")
    await page.locator("#env-vars input[name=ev_v]").first.fill("hello-from-launcher")
    await page.get_by_role("button", name="Add variable").click()
    await expect(page.locator("#env-vars .wb-env-row")).to_have_count(2)
    await expect(page.get_by_test_id("limit-cpu")).to_contain_text("Free in resource group: 2")
    await page.evaluate("window.scrollTo(0, 0)")
    await shots.take(page, "launcher-03-2-environments")
    await page.locator("#l-count").scroll_into_view_if_needed()
    await shots.take(page, "launcher-03-2-resources")
    await la.next(3)

    # 3 data & storage: search, mount, create a folder with "+", open the explorer
    await page.locator("#l-folder-search").fill(folder)
    row = page.locator(f'#mount-table tr[data-folder="{folder}"]')
    await expect(row).to_be_visible()
    await row.locator("input[name=mount]").check()
    await page.get_by_test_id("create-folder").click()
    dialog = la.shell.dialog()
    await dialog.locator("#fc-name").fill(made_here)
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await la.shell.dialog_closed()
    new_row = page.locator(f'#mount-table tr[data-folder="{made_here}"]')
    await expect(new_row.locator("input[name=mount]")).to_be_checked()
    await expect(row.locator("input[name=mount]")).to_be_checked()  # the earlier choice stays
    await expect(page).to_have_url(re.compile(rf"mount={made_here}"))
    await shots.take(page, "launcher-04-3-storage")
    await row.get_by_role("button", name=f"Open {folder}").click()
    explorer = la.shell.dialog()
    await expect(explorer.locator("#explorer-files")).to_be_visible()
    await explorer.get_by_role("button", name="Close").first.click()
    await la.shell.dialog_closed()
    await la.next(4)

    # 4 network
    await page.locator("#l-ports").fill("8080")
    await shots.take(page, "launcher-05-4-network")
    await la.next(5)

    # 5 review: every card, reload and back/forward keep the form
    await expect(la.card(1)).to_contain_text("e2e-launch")
    await expect(la.card(2)).to_contain_text(IMAGE)
    await expect(la.card(2)).to_contain_text("WB_GREETING=hello-from-launcher")
    await expect(la.card(2).get_by_test_id("review-resources")).to_contain_text("256 MiB")
    await expect(la.card(3)).to_contain_text(f"/home/work/{folder}")
    await expect(la.card(3)).to_contain_text(made_here)
    await expect(la.card(4)).to_contain_text("8080")
    await shots.take(page, "launcher-06-5-review")
    await page.reload()
    await la.at(5)
    await expect(la.card(3)).to_contain_text(folder)
    await page.go_back()
    await la.at(4)
    await expect(page.locator("#l-ports")).to_have_value("8080")
    await page.go_forward()
    await la.at(5)
    # Edit on a card goes to its step; the rail jumps anywhere
    await la.card(4).get_by_role("button", name=re.compile("^Edit")).click()
    await la.at(4)
    await page.locator(".wb-rail").get_by_role("button", name="Review & launch").click()
    await la.at(5)

    # launch: the sessions list, with the bell following the session until it runs
    await page.locator("#l-launch").click()
    await page.wait_for_url("**/sessions")
    await expect(page.locator("#wb-bell-count")).to_be_visible()
    # once it runs, the app launcher opens by itself (AP-1; tests/e2e/test_apps.py uses it)
    apps = la.shell.dialog()
    await expect(apps.locator("#app-launcher")).to_be_visible(timeout=LIVE_WAIT)
    await expect(apps).to_contain_text("Apps of e2e-launch")
    await apps.locator(".modal-footer").get_by_role("button", name="Close").click()
    await la.shell.dialog_closed()
    await page.locator("#wb-bell").click()
    item = page.locator("#wb-bell-list li").filter(has_text="Session e2e-launch")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("Running", timeout=LIVE_WAIT)
    await expect(item).to_have_attribute("data-status", "RUNNING")
    await shots.take(page, "launcher-07-launched-bell")

    info = await system.wait_status(user_api, "e2e-launch", "RUNNING", timeout=LIVE_WAIT / 1000)
    sid = info.get("sessionId") or info.get("id") or (await user_api.get(
        "/sessions", params={"q": "e2e-launch", "status": "live"}))["items"][0]["id"]
    out, code = await shell_out(user_api, sid, f"ls -d /home/work/{folder} /home/work/{made_here} && echo $WB_GREETING")
    assert code == 0, out
    assert f"/home/work/{folder}" in out and f"/home/work/{made_here}" in out and "hello-from-launcher" in out
    await user_api.delete(f"/session/{sid}")

    # recent history (CS-11): apply brings the launch back to review
    await la.open()
    await page.locator("[data-wb-history]").click()
    dialog = la.shell.dialog()
    entry = dialog.get_by_test_id("history-item").first
    await expect(entry).to_contain_text("e2e-launch")
    await expect(entry).to_contain_text(folder)
    await shots.take(page, "launcher-08-history")
    await entry.get_by_role("link", name="Apply").click()
    await la.at(5)
    await expect(la.card(3)).to_contain_text(folder)
    await expect(la.card(2)).to_contain_text("WB_GREETING=hello-from-launcher")


async def test_review_errors_and_the_no_mount_warning(page: Page, shots):
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")
    la = await Launcher(page).open("?step=5&name=a+b&type=batch&ports=80&cpu=1&mem=0.25")
    # the manager's field errors (its dry run of the request), each on the card of its step
    await expect(la.card(1)).to_contain_text("startupCommand is required")
    await expect(la.card(1)).to_contain_text("4 to 64 characters")
    await expect(la.card(4)).to_contain_text("ports must be between 1024 and 65535")
    await expect(la.card(2)).not_to_have_class(re.compile("border-danger"))
    await expect(page.locator("#l-launch")).to_be_disabled()
    await expect(page.locator(".wb-rail .has-error")).to_have_count(2)
    await shots.take(page, "launcher-09-5-errors")
    # the field shows its error in place on its step
    await la.card(1).get_by_role("button", name=re.compile("^Edit")).click()
    await la.at(1)
    await expect(page.locator("#l-name")).to_have_class(re.compile("is-invalid"))
    await page.locator("#l-name").fill("no-mount")
    await page.locator("label[for=l-type-interactive]").click()
    await page.locator(".wb-launcher-actions").get_by_role("button", name="Skip to review").click()
    await la.at(5)
    await expect(la.card(1)).not_to_contain_text("startupCommand is required")
    await page.goto(page.url.replace("ports=80", "ports=8080"))
    await expect(page.locator("#l-launch")).to_be_enabled()
    await page.locator("#l-launch").click()
    dialog = la.shell.dialog()
    await expect(dialog).to_contain_text("No folder is mounted")
    await shots.take(page, "launcher-10-no-mount")
    await dialog.get_by_role("button", name="Mount a folder").click()
    await la.at(3)


async def test_admin_launches_for_another_user(page: Page, system: System, shots):
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    la = await Launcher(page).open()
    await page.locator("#l-name").fill("e2e-for-user2")
    await page.locator("#l-owner").check()
    await page.locator("#l-owner-email").fill(USER2)
    await page.locator("#l-owner-search").click()
    await expect(page.get_by_test_id("owner-found")).to_be_visible()
    await shots.take(page, "launcher-11-owner")
    await la.next(2)
    await page.locator("#l-version").select_option(IMAGE)
    # presets: the one larger than what is free is hidden; choosing one fills the sliders
    await system.admin.post("/admin/resource-presets", json={
        "name": "e2e-small", "resource_slots": {"cpu": "1", "mem": "512m"}, "shared_memory": "128m"})
    await system.admin.post("/admin/resource-presets", json={
        "name": "e2e-huge", "resource_slots": {"cpu": "64", "mem": "512g"}})
    try:
        await page.reload()
        await la.at(2)
        options = page.locator("#l-preset option")
        await expect(options.filter(has_text="e2e-small")).to_have_count(1)
        await expect(options.filter(has_text="e2e-huge")).to_have_count(0)
        await page.locator("#l-preset").select_option("e2e-small")
        await expect(page.locator("#l-mem")).to_have_value("0.5")
        await expect(page.locator("#l-shmem")).to_have_value("0.125")
        await page.locator("#l-mem").fill("0.25")  # a slider change switches back to custom
        await expect(page.locator("#l-preset")).to_have_value("custom")
    finally:
        for name in ("e2e-small", "e2e-huge"):
            await system.admin.delete(f"/admin/resource-presets/{name}")
    await page.locator("#l-cpu").fill("1")
    await expect(page.locator("#l-agent")).to_contain_text(system.agent_id)
    await page.locator(".wb-launcher-actions").get_by_role("button", name="Skip to review").click()
    await la.at(5)
    await expect(la.card(1)).to_contain_text(USER2)
    await page.locator("#l-launch").click()
    dialog = la.shell.dialog()
    await dialog.get_by_role("button", name="Launch").click()
    await page.wait_for_url("**/sessions")

    async def owned():
        items = (await system.admin.get("/sessions", params={"all": "true", "owner": USER2, "q": "e2e-for-user2"}))["items"]
        return items and items[0]["status"] == "RUNNING" and items[0]
    session = await wait_for(owned, LIVE_WAIT / 1000, "user2's session runs")
    assert session["owner_email"] == USER2
    await system.admin.delete(f"/session/{session['id']}")


async def test_launcher_in_korean(browser: Browser, workbay: Workbay, shots):
    ctx = await browser.new_context(base_url=workbay.url, viewport={"width": 1360, "height": 860},
                                    locale="ko-KR", reduced_motion="reduce")
    ctx.set_default_timeout(10_000)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto("/login")
        await page.fill("#login-username", USER)
        await page.fill("#login-password", DEMO_PASSWORD)
        await page.locator("#login-password").press("Enter")
        await page.wait_for_url("**/summary")
        await page.goto("/session/start?step=2")
        await expect(page.locator("html")).to_have_attribute("lang", "ko")
        await expect(page.locator(".wb-page-title")).to_have_text("새 세션 시작")
        await expect(page.locator(".wb-rail")).to_contain_text("실행 환경 & 자원 할당")
        await expect(page.locator("#step-2")).to_contain_text("환경 변수")
        await shots.take(page, "launcher-12-ko")
        await page.goto("/session/start?step=5")
        await expect(page.locator("#step-5")).to_contain_text("세션 타입")
        await shots.take(page, "launcher-13-ko-review")
    finally:
        await ctx.close()
    assert not errors, errors
