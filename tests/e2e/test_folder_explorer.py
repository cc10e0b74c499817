"""Folder explorer journeys beyond the basics (tests/e2e/test_folders.py): moving files and folders
into another directory (the move form, dragging onto a directory row or the breadcrumb, refusals
in place), a browser upload that resumes after the page is reloaded half-way, and an admin sharing
a project folder with a named user who then uses it."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import _free_port_pair
from tests.e2e.support import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, AdminAPI, LoginPage, Shell, Workbay
from tests.e2e.test_folders import DataPage

RESUME_PREFIX = "wb-upload-resume:"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workbay-explorer")


@pytest.fixture(scope="module")
def workbay(data_dir) -> Iterator[Workbay]:
    """With the storage-proxy (the browser sends file bytes to it directly)."""
    from workbay.lite import lite_config, start_in_thread

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    base = _free_port_pair()
    handle = start_in_thread(data_dir, base, components=("manager", "webserver", "storage-proxy"),
                             config=lite_config(data_dir, base))
    try:
        yield Workbay(handle.webserver_url, handle.manager_url, AdminAPI.login(handle.manager_url))
    finally:
        handle.stop()


async def folder_id(data: DataPage, name: str) -> str:
    opener = data.row(name).locator("[hx-get$='/explorer']").first
    return re.search(r"/data/([0-9a-f]{32})/explorer", await opener.get_attribute("hx-get")).group(1)


def stored_file(admin: AdminAPI, fid: str, path: str) -> bytes:
    """A file's bytes as the API hands them out (a download token, then the storage-proxy)."""
    ticket = admin.call("POST", f"/folders/{fid}/request-download", {"path": path})
    resp = httpx.get(ticket["url"], params={"token": ticket["token"]})
    resp.raise_for_status()
    return resp.content


def listing(admin: AdminAPI, fid: str, path: str = "") -> set[str]:
    # "path" is also call()'s own parameter: the query goes into the URL
    return {e["name"] for e in admin.call("GET", f"/folders/{fid}/files?{urlencode({'path': path})}")["items"]}


async def test_move_files_and_folders_in_the_explorer(browser: Browser, page: Page, workbay, shots, tmp_path):
    user = workbay.admin.new_user("mover")
    shell = Shell(page)
    await LoginPage(page).log_in(user, USER_PASSWORD, "/summary")
    data = await DataPage(page).open()
    await data.create("moves")
    fid = await folder_id(data, "moves")
    explorer = await data.explore("moves")
    for name in ("archive", "inbox"):
        await explorer.get_by_role("button", name="New folder").click()
        await explorer.locator("#explorer-mkdir-name").fill(name)
        await explorer.locator("#explorer-mkdir-name").press("Enter")
        await expect(explorer.locator(f'#explorer-table tr[data-entry="{name}"]')).to_be_visible()
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"I am {name}\n")
    await explorer.locator("#explorer-upload-files").set_input_files([str(tmp_path / n) for n in ("a.txt", "b.txt", "c.txt")])
    await expect(explorer.locator("#explorer-uploads .wb-upload-done")).to_have_count(3)
    files = explorer.locator("#explorer-table")
    await expect(files.locator('tr[data-entry="c.txt"]')).to_be_visible()

    # choose two files, then Move: the form suggests the directories, Enter moves them
    move = explorer.locator("[data-wb-move-open]")
    await expect(move).to_be_disabled()
    await files.get_by_role("checkbox", name="Select a.txt").check()
    await files.get_by_role("checkbox", name="Select b.txt").check()
    await expect(explorer.locator("[data-wb-move-count]")).to_have_text("2 selected")
    await move.click()
    destination = explorer.get_by_label("Move the selected items to")
    await expect(destination).to_be_focused()
    await expect(explorer.locator("#explorer-move-dirs option")).to_have_count(3)  # /, /archive, /inbox
    await destination.fill("/archive")
    await shots.take(page, "48-explorer-move-form")
    await destination.press("Enter")
    notice = explorer.get_by_test_id("explorer-notice")
    await expect(notice).to_have_text("a.txt, b.txt moved to /archive.")
    await expect(files.locator('tr[data-entry="a.txt"]')).to_have_count(0)
    assert listing(workbay.admin, fid, "archive") == {"a.txt", "b.txt"}

    # a directory that is not there: said next to the listing, nothing moves
    await files.locator('tr[data-entry="c.txt"]').get_by_role("button", name="Move c.txt").click()
    await explorer.get_by_label("Move the selected items to").fill("/nowhere")
    await explorer.get_by_label("Move the selected items to").press("Enter")
    await expect(notice).to_have_text("There is no directory /nowhere in this folder.")
    await expect(notice).to_have_attribute("role", "alert")
    await expect(files.locator('tr[data-entry="c.txt"]')).to_be_visible()
    # still chosen, with what was typed, to correct and retry
    await expect(files.get_by_role("checkbox", name="Select c.txt")).to_be_checked()
    await expect(explorer.get_by_label("Move the selected items to")).to_have_value("/nowhere")
    await expect(explorer.locator("[data-wb-move-count]")).to_have_text("1 selected")
    await shots.take(page, "49-explorer-move-refused")

    # drag a file onto a directory row
    await files.locator('tr[data-entry="c.txt"]').drag_to(files.locator('tr[data-entry="inbox"]'))
    await expect(notice).to_have_text("c.txt moved to /inbox.")
    assert listing(workbay.admin, fid, "inbox") == {"c.txt"}
    # a directory onto another one, then a file back up onto the breadcrumb
    await files.locator('tr[data-entry="inbox"]').drag_to(files.locator('tr[data-entry="archive"]'))
    await expect(notice).to_have_text("inbox moved to /archive.")
    await files.locator('tr[data-entry="archive"]').get_by_role("link", name="archive").click()
    await expect(explorer.locator(".wb-crumbs")).to_contain_text("archive")
    await files.locator('tr[data-entry="a.txt"]').drag_to(explorer.locator(".wb-crumbs a[data-wb-move-target='/']"))
    await expect(notice).to_have_text("a.txt moved to /.")
    assert listing(workbay.admin, fid) == {"a.txt", "archive"}
    assert listing(workbay.admin, fid, "archive") == {"b.txt", "inbox"}
    assert stored_file(workbay.admin, fid, "archive/inbox/c.txt") == b"I am c.txt\n"
    await explorer.get_by_role("button", name="Close", exact=True).last.click()
    await shell.dialog_closed()

    # the same in Korean
    ctx = await browser.new_context(base_url=workbay.url, viewport={"width": 1360, "height": 860},
                                    locale="ko-KR", reduced_motion="reduce")
    ctx.set_default_timeout(10_000)
    try:
        ko = await ctx.new_page()
        await LoginPage(ko).open()
        await ko.fill("#login-username", user)
        await ko.fill("#login-password", USER_PASSWORD)
        await ko.get_by_role("button", name=re.compile("^(Log in|로그인)$")).click()
        await ko.wait_for_url("**/summary")
        await ko.goto("/data")
        await DataPage(ko).row("moves").locator("[hx-get$='/explorer']").first.click()
        dialog = Shell(ko).dialog()
        await dialog.locator('#explorer-table tr[data-entry="a.txt"] [data-wb-move-one]').click()
        await expect(dialog.locator("#explorer-move-to")).to_contain_text("선택한 항목을 옮길 위치")
        await expect(dialog.locator("[data-wb-move-count]")).to_have_text("1개 선택됨")
        await dialog.get_by_label("선택한 항목을 옮길 위치").fill("/archive/inbox")
        await dialog.get_by_label("선택한 항목을 옮길 위치").press("Enter")
        await expect(dialog.get_by_test_id("explorer-notice")).to_have_text("a.txt을(를) /archive/inbox(으)로 옮겼습니다.")
        await shots.take(ko, "50-explorer-move-ko")
    finally:
        await ctx.close()


def partial_uploads(data_dir: Path) -> list[Path]:
    """The storage-proxy's unfinished uploads (named by a 40-hex key, beside .resv/.done files)."""
    return [p for p in data_dir.rglob("*") if p.parent.name == "uploads" and re.fullmatch(r"[0-9a-f]{40}", p.name)]


async def resume_entries(page: Page) -> list[str]:
    return await page.evaluate("p => Object.keys(localStorage).filter(k => k.startsWith(p))", RESUME_PREFIX)


async def test_upload_resumes_after_a_page_reload(page: Page, workbay, data_dir, shots, tmp_path):
    user = workbay.admin.new_user("rita")
    await LoginPage(page).log_in(user, USER_PASSWORD, "/summary")
    data = await DataPage(page).open()
    await data.create("resumable")
    fid = await folder_id(data, "resumable")
    payload = os.urandom(4 * 1024 * 1024)  # random bytes: a gap or an overlap would show
    big = tmp_path / "big.bin"
    big.write_bytes(payload)

    # slow the browser's uploads down so that the reload lands half-way
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    slow = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024}
    await cdp.send("Network.emulateNetworkConditions", slow)
    explorer = await data.explore("resumable")
    await explorer.locator("#explorer-upload-files").set_input_files(str(big))
    await expect(explorer.locator('[data-upload="big.bin"]')).to_be_visible()
    for _ in range(600):  # until the storage-proxy holds a good part of it
        if any(p.stat().st_size >= 1024 * 1024 for p in partial_uploads(data_dir)):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the throttled upload never reached 1 MiB on the storage-proxy")
    assert len(await resume_entries(page)) == 1
    await page.reload()
    await cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})
    assert "big.bin" not in listing(workbay.admin, fid)  # not complete
    assert len(await resume_entries(page)) == 1  # kept across the reload

    # the same file chosen again continues where the storage-proxy stopped
    explorer = await DataPage(page).explore("resumable")
    await explorer.locator("#explorer-upload-files").set_input_files(str(big))
    row = explorer.locator('[data-upload="big.bin"]')
    await expect(row.locator(".wb-upload-note")).to_have_text(re.compile(r"^Resuming from [1-9]\d?%$"))
    await expect(row).to_have_class(re.compile("wb-upload-done"))
    await expect(explorer.locator("[data-wb-upload-summary]")).to_have_text("1 file uploaded.")
    await shots.take(page, "51-explorer-upload-resumed")
    assert await resume_entries(page) == []  # done: nothing left to resume
    assert stored_file(workbay.admin, fid, "big.bin") == payload
    assert partial_uploads(data_dir) == []

    # entries older than the storage-proxy keeps uploads for are dropped when the page loads
    await page.evaluate("""p => {
        localStorage.setItem(p + '["old"]', JSON.stringify({session: "s1", savedAt: Date.now() - 25 * 3600 * 1000}));
        localStorage.setItem(p + '["fresh"]', JSON.stringify({session: "s2", savedAt: Date.now()}));
    }""", RESUME_PREFIX)
    await page.reload()
    assert await resume_entries(page) == [RESUME_PREFIX + '["fresh"]']


async def test_admin_shares_a_project_folder_with_a_named_user(page: Page, workbay, shots, tmp_path):
    named = workbay.admin.new_user("nadia")  # in no project at all
    shell = Shell(page)
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    data = await DataPage(page).open()
    await page.get_by_role("button", name="Create folder").first.click()
    dialog = shell.dialog()
    await dialog.locator("#fc-name").fill("team-space")
    await dialog.locator("#fc-type-project").check()
    await dialog.locator("#fc-group").select_option(label="default")
    await dialog.locator("#fc-perm-ro").check()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await shell.toast("Folder team-space was created.")

    await data.row("team-space").get_by_role("button", name="Share team-space").click()
    dialog = shell.dialog()
    await expect(dialog.get_by_test_id("project-share-note")).to_be_visible()
    await expect(dialog).not_to_contain_text("Pending invitations")
    await dialog.locator("#share-emails").fill("nobody-" + named)
    await dialog.get_by_role("button", name="Share", exact=True).click()
    await expect(dialog.locator("#share-emails-error")).to_contain_text("nobody-" + named)
    await dialog.locator("#share-emails").fill(named)
    await dialog.locator("#share-perm").select_option("rw")
    await dialog.get_by_role("button", name="Share", exact=True).click()
    await expect(dialog.locator("#share-body")).to_contain_text(f"{named} can now use this folder.")
    share = dialog.locator(f'#share-table tr[data-share="{named}"]')
    await expect(share.locator("select")).to_have_value("rw")
    await shots.take(page, "52-project-folder-share")
    await dialog.get_by_role("button", name="Close", exact=True).last.click()
    await shell.log_out()

    # the named user sees it without an invitation and may write into it
    await LoginPage(page).log_in(named, USER_PASSWORD, "/summary")
    data = await DataPage(page).open()
    row = data.row("team-space")
    await expect(row.locator("[data-col=type]")).to_have_text("Project")
    await expect(row.locator("[data-col=permission]")).to_contain_text("Read & write")
    await expect(row.get_by_role("button", name="Share team-space")).to_have_count(0)
    explorer = await data.explore("team-space")
    (tmp_path / "hello.txt").write_text("from nadia\n")
    await explorer.locator("#explorer-upload-files").set_input_files(str(tmp_path / "hello.txt"))
    await expect(explorer.locator('#explorer-table tr[data-entry="hello.txt"]')).to_be_visible()
    await shots.take(page, "53-project-folder-shared-user")
    await explorer.get_by_role("button", name="Close", exact=True).last.click()
    await shell.log_out()

    # the admin takes the share back: the folder is gone from the user's list
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    data = await DataPage(page).open()
    await data.row("team-space").get_by_role("button", name="Share team-space").click()
    dialog = shell.dialog()
    await dialog.locator(f'#share-table tr[data-share="{named}"]').get_by_role("button", name=f"Remove {named}").click()
    await expect(dialog.locator("#share-body")).to_contain_text(f"The share of {named} was removed.")
    await expect(dialog.get_by_test_id("no-shares")).to_be_visible()
    await dialog.get_by_role("button", name="Close", exact=True).last.click()
    await shell.log_out()
    await LoginPage(page).log_in(named, USER_PASSWORD, "/summary")
    await DataPage(page).open()
    await expect(page.locator("#folder-list")).to_contain_text("No folders yet")
