"""Admin journeys: resource policies (AD-1) and credentials (ID-9); the remaining screens of the
shell (settings, logs, dialogs of the user menu, sign-up) for the screenshots."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.support import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, AdminAPI, LoginPage, Shell


@pytest.fixture
async def admin(page: Page) -> Page:
    await LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    return page


async def accept_dialog(dialog) -> None:
    await dialog.accept()


async def _download(page: Page, link_text: str) -> tuple[str, str]:
    await page.get_by_role("button", name="Tools").click()
    async with page.expect_download() as info:
        await page.get_by_role("link", name=link_text).click()
    download = await info.value
    return download.suggested_filename, Path(await download.path()).read_text(encoding="utf-8")


async def test_resource_policy_create_edit_export_delete(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    await page.get_by_role("link", name="Resource Policy").click()
    table = page.locator("#policy-keypair-table")
    await expect(table).to_contain_text("default")
    await shots.take(page, "20-policy-keypair")

    await page.get_by_role("button", name="Create").click()
    dialog = shell.dialog()
    await dialog.locator("#pol-name").fill("e2e-gold")
    await dialog.locator("[data-wb-unlimited=pol-slot_cpu]").uncheck()
    await dialog.locator("#pol-slot_cpu").fill("4")
    await dialog.locator("[data-wb-unlimited=pol-slot_mem]").uncheck()
    await dialog.locator("#pol-slot_mem").fill("8")
    await dialog.locator("[data-wb-unlimited=pol-idle_timeout]").uncheck()
    await dialog.locator("#pol-idle_timeout").fill("-5")
    await dialog.locator("#pol-allowed_folder_hosts").fill("local:volume1")
    await shots.take(page, "21-policy-create-dialog")
    await dialog.get_by_role("button", name="Create").click()
    await expect(dialog.locator("#pol-idle_timeout-error")).to_be_visible()  # checked before the API
    await dialog.locator("#pol-idle_timeout").fill("600")
    await dialog.get_by_role("button", name="Create").click()
    await shell.toast("Resource policy e2e-gold was created.")
    row = table.locator("tr[data-policy=e2e-gold]")
    await expect(row).to_contain_text("4 Core")
    await expect(row).to_contain_text("8 GiB")
    await expect(row).to_contain_text("00:10:00")
    await expect(row).to_contain_text("local:volume1")

    await row.get_by_role("button", name="Edit e2e-gold").click()
    dialog = shell.dialog()
    await expect(dialog.locator("#pol-name")).to_have_attribute("readonly", "")
    await expect(dialog.locator("#pol-slot_cpu")).to_have_value("4")
    await dialog.locator("#pol-max_concurrent_sessions").fill("7")
    await shots.take(page, "22-policy-edit-dialog")
    await dialog.get_by_role("button", name="Save").click()
    await shell.toast("Resource policy e2e-gold was updated.")
    await expect(row.locator("[data-col=max_concurrent_sessions]")).to_have_text("7")

    name, text = await _download(page, "Export as JSON")
    assert name == "keypair-resource-policies.json"
    exported = {p["name"]: p for p in json.loads(text)}
    assert exported["e2e-gold"]["max_concurrent_sessions"] == 7
    assert exported["e2e-gold"]["total_resource_slots"] == {"cpu": "4", "mem": str(8 * 2**30)}
    name, text = await _download(page, "Export as CSV")
    assert name == "keypair-resource-policies.csv"
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["e2e-gold"]["idle_timeout"] == "600"

    # a policy in use cannot be deleted: the API's message is shown in the dialog
    user = workbay.admin.new_user("dora")
    key = workbay.admin.call("GET", "/admin/keypairs", user_email=user)["items"][0]["access_key"]
    workbay.admin.call("PATCH", f"/admin/keypairs/{key}", {"resource_policy": "e2e-gold"})
    await row.get_by_role("button", name="Delete e2e-gold").click()
    dialog = shell.dialog()
    delete = dialog.get_by_role("button", name="Delete")
    await expect(delete).to_be_disabled()
    await dialog.locator("#confirm-input").fill("e2e-gold")
    await delete.click()
    await expect(dialog.get_by_role("alert")).to_contain_text("cannot be deleted")
    await shots.take(page, "23-policy-delete-refused")
    workbay.admin.call("PATCH", f"/admin/keypairs/{key}", {"resource_policy": "default"})
    await dialog.locator("#confirm-input").fill("e2e-gold")
    await dialog.get_by_role("button", name="Delete").click()
    await shell.toast("Resource policy e2e-gold was deleted.")
    await expect(row).to_have_count(0)

    for kind in ("user", "project"):
        await page.get_by_role("link", name=kind.title(), exact=True).click()
        await expect(page.locator(f"#policy-{kind}-table")).to_contain_text("default")
        await shots.take(page, f"24-policy-{kind}")
    await page.get_by_role("button", name="Create").click()
    dialog = shell.dialog()
    await dialog.locator("#pol-name").fill("e2e-project")
    await dialog.locator("#pol-max_network_count").fill("5")
    await dialog.get_by_role("button", name="Create").click()
    await shell.toast("Resource policy e2e-project was created.")
    await expect(page.locator("tr[data-policy=e2e-project] [data-col=max_network_count]")).to_have_text("5")


async def test_admin_adds_a_keypair_with_explicit_keys(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    owner = workbay.admin.new_user("erin")
    await page.get_by_role("link", name="Credentials").click()
    await expect(page.locator("#credentials-table")).to_contain_text(owner)
    await shots.take(page, "30-credentials")

    access_key, secret_key = "AKIAE2EEXPLICIT00001", "e2e-secret-" + "x" * 29
    await page.get_by_role("button", name="Add credential").click()
    dialog = shell.dialog()
    await dialog.locator("#kp-user_email").fill(owner)
    await dialog.locator("#kp-rate_limit").fill("500")
    await dialog.get_by_text("Advanced").click()
    await dialog.locator("#kp-access_key").fill(access_key)
    await dialog.locator("#kp-secret_key").fill(secret_key)
    await shots.take(page, "31-add-credential")
    await dialog.get_by_role("button", name="Add").click()
    await shell.toast(f"Keypair {access_key} was added.")
    row = page.locator("#credentials-table tr", has_text=access_key)
    await expect(row).to_contain_text("500 requests / 15 min")

    await row.get_by_role("button", name=f"Details {access_key}").click()
    await expect(shell.dialog()).to_contain_text(secret_key)
    await shots.take(page, "32-keypair-detail")
    await shell.dialog().get_by_role("button", name="Close", exact=True).last.click()
    await shell.dialog_closed()

    await row.get_by_role("button", name=f"Edit {access_key}").click()
    dialog = shell.dialog()
    await dialog.locator("#kp-rate_limit").fill("0")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator("#kp-rate_limit-error")).to_be_visible()
    await dialog.locator("#kp-rate_limit").fill("900")
    await dialog.get_by_role("button", name="Save").click()
    await shell.toast(f"Keypair {access_key} was updated.")
    await expect(row).to_contain_text("900 requests / 15 min")

    # requests signed with the new keys work
    assert AdminAPI(workbay.manager_url, access_key, secret_key).call("GET", "/user/me")["email"] == owner

    await row.get_by_role("button", name=f"Deactivate {access_key}").click()
    await shell.dialog().get_by_role("button", name="Deactivate").click()
    await shell.toast(f"Keypair {access_key} was deactivated.")
    await page.get_by_role("link", name="Inactive").click()
    row = page.locator("#credentials-table tr", has_text=access_key)
    await expect(row).to_be_visible()
    await row.get_by_role("button", name=f"Delete {access_key}").click()
    dialog = shell.dialog()
    await dialog.locator("#confirm-input").fill(access_key)
    await shots.take(page, "33-delete-credential")
    await dialog.get_by_role("button", name="Delete").click()
    await shell.toast(f"Keypair {access_key} was deleted.")
    await expect(page.locator("#credentials-list")).not_to_contain_text(access_key)


async def test_column_chooser_and_filters_keep_their_state(admin: Page, workbay, shots):
    page = admin
    for n in range(3):
        workbay.admin.new_user(f"filter{n}")
    await page.locator("input[name=q]").fill("filter1")
    await expect(page.locator("#users-table tbody tr")).to_have_count(1)
    await expect(page).to_have_url(re.compile(r"q=filter1"))
    await page.locator(".wb-column-chooser button").click()
    await page.locator("[data-column-toggle=users-table][value=description]").uncheck()
    await expect(page.locator("#users-table th[data-col=description]")).to_be_hidden()
    await page.reload()
    await expect(page.locator("input[name=q]")).to_have_value("filter1")
    await expect(page.locator("#users-table th[data-col=description]")).to_be_hidden()
    await expect(page.locator("#users-table th[data-col=email]")).to_be_visible()


async def test_project_selector_and_notification_bell(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    project = workbay.admin.call("GET", "/admin/projects", q="model-store")["items"][0]
    workbay.admin.call("POST", f"/admin/projects/{project['id']}/members", {"emails": [ADMIN]})
    async with page.expect_response("**/func/events/notifications") as stream:
        await page.reload()
    assert (await stream.value).status == 200  # the bell listens to the manager's SSE through /func
    await page.locator("#wb-bell").click()
    await expect(page.locator("#wb-bell-list")).to_contain_text("No notifications yet.")
    await shots.take(page, "46-notifications")
    await page.keyboard.press("Escape")
    await page.select_option("#wb-project-select", label="model-store")
    await shell.toast("The current project was changed.")
    await page.reload()
    await expect(page.locator("#wb-project-select")).to_have_value(project["id"])
    assert workbay.admin.call("GET", "/user/preferences")["project"] == project["id"]


async def test_user_menu_screens_and_settings(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    await shell.user_menu("About")
    await expect(shell.dialog()).to_contain_text("v7.20230615")
    await shots.take(page, "40-about")
    await page.keyboard.press("Escape")
    await shell.dialog_closed()

    await shell.user_menu("Preferences")
    await page.wait_for_url("**/settings")
    await page.get_by_role("button", name="Show").click()
    await expect(shell.dialog().locator("#my-access_key")).to_have_value(re.compile(r"^[A-Z0-9]{20}$"))
    await shots.take(page, "41-my-keypair")
    await page.keyboard.press("Escape")
    await shell.dialog_closed()

    await page.get_by_role("button", name="Manage").click()
    dialog = shell.dialog()
    page.once("dialog", accept_dialog)
    await dialog.get_by_role("button", name="Generate").click()
    await expect(dialog.locator("#ssh-private")).to_contain_text("PRIVATE KEY")
    await shots.take(page, "42-ssh-keypair")
    await page.keyboard.press("Escape")
    await shell.dialog_closed()

    await page.locator("#settings-search").fill("sidebar")
    await expect(page.locator("[data-wb-setting]:visible")).to_have_count(1)
    await page.locator("#settings-search").fill("")
    await page.locator("#settings-search").blur()  # "[" types into a text field; elsewhere it toggles
    await page.keyboard.press("[")
    await expect(page.locator("#wb-shell")).to_have_class(re.compile("wb-compact"))
    await shots.take(page, "43-sidebar-compact")
    await page.keyboard.press("[")

    await shell.user_menu("Logs / errors")
    await page.wait_for_url("**/settings?tab=logs")
    await expect(page.locator("#logs-body tr").first).to_be_visible()  # the dialogs above were logged
    await shots.take(page, "44-settings-logs")
    await page.locator("#logs-errors-only").check()
    await page.locator("#logs-clear").click()
    await expect(page.locator("#logs-empty")).to_be_visible()


async def test_sign_up_dialog(page: Page, workbay, shots):
    login = await LoginPage(page).open()
    await page.get_by_role("button", name="Sign up").click()
    dialog = Shell(page).dialog()
    await dialog.locator("#su-email").fill("signup@example.com")
    await dialog.locator("#su-password").fill(USER_PASSWORD)
    await dialog.locator("#su-password2").fill(USER_PASSWORD + "x")
    await dialog.get_by_role("button", name="Sign up").click()
    await expect(dialog.locator("#su-password2-error")).to_contain_text("do not match")
    await expect(dialog.locator("#su-agree")).to_have_class(re.compile("is-invalid"))
    await shots.take(page, "45-sign-up")
    assert login

