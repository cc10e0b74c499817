"""Storage folder journeys (VF-1…VF-12): a user creates a folder, uploads a directory tree through
the storage-proxy (tus, straight from the browser), browses, renames, downloads, shares it with a
second user who accepts on the Summary page and sees it read-only, then trashes, restores and
deletes it forever; an admin sets and unsets a quota on the Storage tab and the upload over the
quota is refused with a clear message."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import _free_port_pair
from tests.e2e.support import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, AdminAPI, LoginPage, Shell, Workbay


@pytest.fixture(scope="module")
def workbay(tmp_path_factory) -> Iterator[Workbay]:
    """This module needs the storage-proxy too (uploads and downloads go to it directly)."""
    from workbay.lite import lite_config, start_in_thread

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    data_dir = tmp_path_factory.mktemp("workbay-folders")
    base = _free_port_pair()
    config = lite_config(data_dir, base)
    handle = start_in_thread(data_dir, base, components=("manager", "webserver", "storage-proxy"),
                             config=config)
    try:
        yield Workbay(handle.webserver_url, handle.manager_url, AdminAPI.login(handle.manager_url))
    finally:
        handle.stop()


class DataPage:
    """The Data page and its dialogs."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.shell = Shell(page)
        self.table = page.locator("#folder-table")

    async def open(self, tab: str | None = None) -> DataPage:
        await self.page.goto("/data" + (f"?tab={tab}" if tab else ""))
        return self

    def row(self, name: str):
        return self.page.locator(f'#folder-table tr[data-folder="{name}"]')

    async def tab(self, label: str) -> None:
        await self.page.locator(".wb-tabs").get_by_role("link", name=re.compile(f"^{label}")).click()

    async def create(self, name: str, **choices: str) -> None:
        await self.page.get_by_role("button", name="Create folder").first.click()
        dialog = self.shell.dialog()
        await dialog.locator("#fc-name").fill(name)
        for field, value in choices.items():
            await dialog.locator(f"#fc-{field}-{value}").check()
        await dialog.get_by_role("button", name="Create", exact=True).click()
        await self.shell.toast(f"Folder {name} was created.")

    async def explore(self, name: str):
        await self.row(name).get_by_role("button", name=f"Open {name}", exact=True).first.click()
        dialog = self.shell.dialog()
        await expect(dialog.locator("#explorer-files")).to_be_visible()
        return dialog


def make_tree(root: Path) -> Path:
    foo = root / "foo"
    (foo / "test").mkdir(parents=True)
    (foo / "test.txt").write_text("hello from test.txt\n")
    (foo / "test" / "test2.txt").write_text("nested file test2\n")
    return foo


async def test_folder_upload_browse_share_trash(browser, page: Page, workbay, shots, tmp_path):
    owner = workbay.admin.new_user("olivia")
    friend = workbay.admin.new_user("felix")
    shell = Shell(page)
    await LoginPage(page).log_in(owner, USER_PASSWORD, "/summary")  # users land on the Summary page
    await expect(page.locator("#invitations-card")).to_contain_text("No invitations")
    await page.locator("#wb-sidebar").get_by_role("link", name="Data").click()
    await page.wait_for_url("**/data")
    data = DataPage(page)
    await expect(page.locator("#folder-list")).to_contain_text("No folders yet")
    await expect(page.get_by_test_id("stat-created")).to_contain_text("0")

    # VF-3: the create dialog (location with its capacity, usage mode, type)
    await page.get_by_role("button", name="Create folder").first.click()
    dialog = shell.dialog()
    await expect(dialog.locator("#fc-host")).to_have_value("local:volume1")
    await expect(dialog.locator("[data-wb-host-capacity='local:volume1']")).to_be_visible()
    await expect(dialog.locator("#fc-type-project")).to_have_count(0)  # users make user folders only
    await expect(dialog.locator("#fc-cloneable")).to_be_hidden()
    await dialog.locator("#fc-mode-model").check()
    await expect(dialog.locator("#fc-cloneable")).to_be_visible()
    await dialog.locator("#fc-mode-general").check()
    await dialog.locator("#fc-name").fill("x" * 64 + "y")  # maxlength keeps 64
    await expect(dialog.locator("#fc-name")).to_have_value("x" * 64)
    await dialog.locator("#fc-name").fill("e2e-data")
    await shots.take(page, "40-folder-create-dialog")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await shell.toast("Folder e2e-data was created.")
    row = data.row("e2e-data")
    await expect(row).to_contain_text("READY")
    await expect(row).to_contain_text("local:volume1")
    await expect(row.locator("[data-col=type]")).to_have_text("User")
    await expect(page.get_by_test_id("stat-created")).to_contain_text("1")

    # a name taken already: the API's answer in the dialog
    await page.get_by_role("button", name="Create folder").first.click()
    dialog = shell.dialog()
    await dialog.locator("#fc-name").fill("e2e-data")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await expect(dialog.locator(".is-invalid, .alert-danger").first).to_be_visible()
    await expect(dialog).to_contain_text("already exists")
    await dialog.get_by_role("button", name="Cancel").click()
    await shell.dialog_closed()

    # VF-4: upload a directory tree (structure kept), browse into it
    tree = make_tree(tmp_path)
    explorer = await data.explore("e2e-data")
    await expect(explorer.locator("#explorer-files")).to_contain_text("This folder is empty.")
    # session apps (tests/e2e/test_apps.py runs them with containers)
    await expect(explorer.get_by_role("button", name="Execute File Browser")).to_be_enabled()
    await expect(explorer.get_by_role("button", name="Run SFTP server")).to_be_enabled()
    await explorer.locator("#explorer-upload-dir").set_input_files(str(tree))
    uploads = explorer.locator("#explorer-uploads")
    await expect(uploads.locator(".wb-upload-done")).to_have_count(2)
    await expect(uploads).to_contain_text("foo/test/test2.txt")
    files = explorer.locator("#explorer-table")
    await expect(files.locator('tr[data-entry="foo"]')).to_be_visible()
    await files.locator('tr[data-entry="foo"]').get_by_role("link", name="foo").click()
    await expect(explorer.locator(".wb-crumbs")).to_contain_text("foo")
    await expect(files.locator('tr[data-entry="test.txt"]')).to_contain_text("20 B")
    await expect(files.locator('tr[data-entry="test"]')).to_be_visible()
    await files.locator('tr[data-entry="test"]').get_by_role("link", name="test").click()
    await expect(files.locator('tr[data-entry="test2.txt"]')).to_be_visible()
    await shots.take(page, "41-folder-explorer")
    await explorer.locator(".wb-crumbs").get_by_role("link", name="foo").click()
    await expect(files.locator('tr[data-entry="test.txt"]')).to_be_visible()

    # drag & drop onto the explorer uploads into the directory shown
    await explorer.locator("[data-wb-dropzone]").evaluate("""zone => {
        const dt = new DataTransfer();
        dt.items.add(new File(["dropped!"], "dropped.txt", {type: "text/plain"}));
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }
    }""")
    await expect(uploads.locator('[data-upload="foo/dropped.txt"].wb-upload-done')).to_be_visible()
    await expect(files.locator('tr[data-entry="dropped.txt"]')).to_contain_text("8 B")

    # new folder, rename a file, download it
    await explorer.get_by_role("button", name="New folder").click()
    await explorer.locator("#explorer-mkdir-name").fill("made-here")
    await explorer.locator("#explorer-mkdir-name").press("Enter")
    await expect(files.locator('tr[data-entry="made-here"]')).to_be_visible()
    await files.locator('tr[data-entry="test.txt"]').get_by_role("button", name="Rename test.txt").click()
    rename = explorer.locator("tr.wb-inline-row:not([hidden]) input[name=new_name]")
    await rename.fill("renamed.txt")
    await rename.press("Enter")
    await expect(explorer.get_by_test_id("explorer-notice")).to_contain_text("test.txt was renamed to renamed.txt.")
    await expect(files.locator('tr[data-entry="test.txt"]')).to_have_count(0)
    async with page.expect_download() as info:
        await files.locator('tr[data-entry="renamed.txt"]').get_by_role("button", name="Download renamed.txt").click()
    download = await info.value
    assert download.suggested_filename == "renamed.txt"
    assert Path(await download.path()).read_text() == "hello from test.txt\n"
    # a directory downloads as a zip archive
    async with page.expect_download() as info:
        await files.locator('tr[data-entry="test"]').get_by_role("button", name="Download test").click()
    archive = await info.value
    with zipfile.ZipFile(await archive.path()) as zf:
        names = zf.namelist()
        assert any(n.endswith("test2.txt") for n in names), names
        assert zf.read(next(n for n in names if n.endswith("test2.txt"))) == b"nested file test2\n"
    # the owner may delete files (after confirming in place)
    await files.locator('tr[data-entry="made-here"]').get_by_role("button", name="Delete made-here").click()
    await explorer.locator("tr.wb-inline-danger:not([hidden])").get_by_role("button", name="Delete").click()
    await expect(files.locator('tr[data-entry="made-here"]')).to_have_count(0)
    await explorer.get_by_role("button", name="Close", exact=True).last.click()
    await shell.dialog_closed()
    await expect(row.locator("[data-col=size]")).not_to_have_text("0 B")

    # VF-9: share read-only with the friend
    await row.get_by_role("button", name="Share e2e-data").click()
    dialog = shell.dialog()
    await expect(dialog.get_by_test_id("no-shares")).to_be_visible()
    await dialog.locator("#share-emails").fill(friend)
    await dialog.locator("#share-perm").select_option("ro")
    await dialog.get_by_role("button", name="Invite").click()
    await expect(dialog.locator("#share-body")).to_contain_text(f"Invitation sent to {friend}.")
    await expect(dialog.locator(f'#pending-table tr[data-invitation="{friend}"]')).to_contain_text("Read only")
    await shots.take(page, "42-folder-share-dialog")
    await dialog.get_by_role("button", name="Close", exact=True).last.click()
    await shell.log_out()

    # the friend accepts on Summary and sees the folder read-only, without management controls
    await LoginPage(page).log_in(friend, USER_PASSWORD, "/summary")
    card = page.locator("#invitations-card")
    invitation = card.locator('li[data-invitation="e2e-data"]')
    await expect(invitation).to_contain_text(owner)
    await shots.take(page, "43-summary-invitation")
    await invitation.get_by_role("button", name="Accept e2e-data").click()
    await shell.toast(re.compile("You accepted the invitation to e2e-data"))
    await expect(card).to_contain_text("No invitations")
    data = await DataPage(page).open()
    shared = data.row("e2e-data")
    await expect(shared.locator("[data-col=permission]")).to_contain_text("Read only")
    await expect(shared.get_by_role("button", name="Rename e2e-data")).to_have_count(0)
    await expect(shared.get_by_role("button", name="Move to trash e2e-data")).to_have_count(0)
    await expect(shared.get_by_role("button", name="Share e2e-data")).to_have_count(0)
    await expect(page.get_by_test_id("stat-invited")).to_contain_text("1")
    explorer = await data.explore("e2e-data")
    await expect(explorer).to_contain_text("read-only for you")
    await expect(explorer.get_by_role("button", name="Upload files")).to_have_count(0)
    await expect(explorer.get_by_role("button", name="Upload folder")).to_have_count(0)
    await explorer.locator('tr[data-entry="foo"]').get_by_role("link", name="foo").click()
    await expect(explorer.locator('tr[data-entry="renamed.txt"]')).to_be_visible()
    await expect(explorer.get_by_role("button", name="Rename renamed.txt")).to_have_count(0)
    await expect(explorer.get_by_role("button", name="Delete renamed.txt")).to_have_count(0)
    await explorer.get_by_role("button", name="Close", exact=True).last.click()
    await shell.log_out()

    # the owner sees the share, makes it read-write, then removes it
    await LoginPage(page).log_in(owner, USER_PASSWORD, "/summary")
    data = await DataPage(page).open()
    row = data.row("e2e-data")
    await row.get_by_role("button", name="Share e2e-data").click()
    dialog = shell.dialog()
    share = dialog.locator(f'#share-table tr[data-share="{friend}"]')
    await expect(share.locator("select")).to_have_value("ro")
    await share.locator("select").select_option("rw")
    await expect(dialog.locator("#share-body")).to_contain_text(f"Permission of {friend} was changed.")
    await expect(dialog.locator(f'#share-table tr[data-share="{friend}"] select')).to_have_value("rw")
    await dialog.locator(f'#share-table tr[data-share="{friend}"]').get_by_role("button", name=f"Remove {friend}").click()
    await expect(dialog.locator("#share-body")).to_contain_text(f"{friend} can no longer use this folder.")
    await expect(dialog.get_by_test_id("no-shares")).to_be_visible()
    await dialog.get_by_role("button", name="Close", exact=True).last.click()
    await shell.dialog_closed()
    await shots.take(page, "44-data-page")

    # VF-6: trash, restore, delete forever (typing the name)
    await row.get_by_role("button", name="Move to trash e2e-data").click()
    await shell.dialog().get_by_role("button", name="Move to trash").click()
    await shell.toast("Folder e2e-data was moved to the trash.")
    await expect(row).to_have_count(0)
    await data.tab("Trash")
    trashed = data.row("e2e-data")
    await expect(trashed).to_contain_text("DELETE-PENDING")
    await shots.take(page, "45-data-trash")
    await trashed.get_by_role("button", name="Restore e2e-data").click()
    await shell.toast("Folder e2e-data was restored.")
    await expect(page.locator("#folder-list")).to_contain_text("The trash is empty.")
    await data.tab("General")
    await expect(data.row("e2e-data")).to_contain_text("READY")
    await data.row("e2e-data").get_by_role("button", name="Move to trash e2e-data").click()
    await shell.dialog().get_by_role("button", name="Move to trash").click()
    await shell.toast("Folder e2e-data was moved to the trash.")
    await data.tab("Trash")
    await data.row("e2e-data").get_by_role("button", name="Delete forever e2e-data").click()
    dialog = shell.dialog()
    forever = dialog.get_by_role("button", name="Delete forever")
    await expect(forever).to_be_disabled()
    await dialog.locator("#confirm-input").fill("e2e-dat")
    await expect(forever).to_be_disabled()
    await dialog.locator("#confirm-input").fill("e2e-data")
    await forever.click()
    await shell.toast("Folder e2e-data was deleted forever.")
    await expect(page.locator("#folder-list")).to_contain_text("The trash is empty.")


async def test_folder_tabs_automount_and_models(page: Page, workbay, shots):
    user = workbay.admin.new_user("tabby")
    await LoginPage(page).log_in(user, USER_PASSWORD, "/summary")
    data = await DataPage(page).open()
    await data.create(".local")
    await expect(data.row(".local")).to_have_count(0)  # not on the General tab
    await data.tab("Automount")
    await expect(data.row(".local")).to_be_visible()
    await expect(page.locator(".wb-tabs").get_by_role("link", name="Pipeline")).to_have_count(0)
    await data.tab("Models")
    await page.get_by_role("button", name="Create folder").first.click()
    dialog = Shell(page).dialog()
    await dialog.locator("#fc-name").fill("my-model")
    await dialog.locator("#fc-mode-model").check()
    await dialog.locator("#fc-cloneable").check()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await Shell(page).toast("Folder my-model was created.")
    await expect(data.row("my-model")).to_be_visible()
    await data.row("my-model").get_by_role("button", name="Clone my-model").click()
    dialog = Shell(page).dialog()
    await expect(dialog.locator("#fcl-target_name")).to_have_value("my-model-copy")
    await dialog.get_by_role("button", name="Clone", exact=True).click()
    await Shell(page).toast(re.compile("Cloning my-model into my-model-copy started"))
    await expect(data.row("my-model-copy")).to_be_visible()
    await page.locator("input[name=q]").fill("copy")
    await expect(data.row("my-model")).to_have_count(0)
    await expect(data.row("my-model-copy")).to_be_visible()


async def test_admin_sets_a_quota_and_an_upload_over_it_is_refused(page: Page, workbay, shots, tmp_path):
    user = workbay.admin.new_user("quincy")
    shell = Shell(page)
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    await page.locator("#wb-sidebar").get_by_role("link", name="Resources").click()
    await page.wait_for_url("**/resources")
    volume = page.locator('#volume-table tr[data-volume="local:volume1"]')
    await expect(volume).to_contain_text("vfs")
    await expect(volume).to_contain_text("quota")
    await volume.get_by_role("link", name=re.compile("Quota settings")).click()
    await page.locator("#quota-target").fill(user)
    await page.get_by_role("button", name="Show quota").click()
    quota = page.locator("#quota-table")
    await expect(quota).to_contain_text(user)
    await expect(quota).to_contain_text("Policy default")
    await quota.get_by_role("button", name="Edit").click()
    dialog = shell.dialog()
    await dialog.locator("#quota-limit_gib").fill("0")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator("#quota-limit_gib-error")).to_be_visible()
    await dialog.locator("#quota-limit_gib").fill("0.00001")  # about 10 KiB
    await dialog.get_by_role("button", name="Save").click()
    await shell.toast(f"The quota of {user} on local:volume1 was set.")
    await expect(quota.get_by_test_id("quota-limit")).to_have_text("10.49 KiB")
    await expect(quota).to_contain_text("Set here")
    await shots.take(page, "46-resources-storage")
    await shell.log_out()

    await LoginPage(page).log_in(user, USER_PASSWORD, "/summary")
    data = await DataPage(page).open()
    await data.create("small")
    await expect(data.row("small")).to_be_visible()
    await expect(page.get_by_test_id("user-usage-local:volume1")).to_contain_text("10.49 KiB")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 64 * 1024)
    explorer = await data.explore("small")
    await explorer.locator("#explorer-upload-files").set_input_files(str(big))
    failed = explorer.locator(".wb-upload-failed")
    await expect(failed).to_contain_text("big.bin")
    await expect(failed.locator(".wb-upload-error")).to_contain_text(re.compile("[Qq]uota"))
    await shell.toast(re.compile("big.bin could not be uploaded"))
    await shots.take(page, "47-folder-upload-over-quota")
    await explorer.get_by_role("button", name="Close", exact=True).last.click()
    await shell.dialog_closed()
    await shell.log_out()

    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    await page.goto(f"/resources?tab=storage&host=local:volume1&scope=user&target={user}")
    quota = page.locator("#quota-table")
    await quota.get_by_role("button", name="Unset").click()
    await shell.dialog().get_by_role("button", name="Unset").click()
    await shell.toast(f"The quota of {user} on local:volume1 was unset.")
    await expect(quota).to_contain_text("Policy default")
    await expect(quota.get_by_role("button", name="Unset")).to_be_disabled()
