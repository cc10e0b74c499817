"""Admin journeys: resource policies (AD-1) and credentials (ID-9); the remaining screens of the
shell (settings, logs, dialogs of the user menu, sign-up) for the screenshots."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, LoginPage, Shell


@pytest.fixture
def admin(page: Page) -> Page:
    LoginPage(page).log_in(ADMIN, ADMIN_PASSWORD, "/users")
    return page


def _download(page: Page, link_text: str) -> tuple[str, str]:
    page.get_by_role("button", name="Tools").click()
    with page.expect_download() as info:
        page.get_by_role("link", name=link_text).click()
    download = info.value
    return download.suggested_filename, open(download.path(), encoding="utf-8").read()


def test_resource_policy_create_edit_export_delete(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    page.get_by_role("link", name="Resource Policy").click()
    table = page.locator("#policy-keypair-table")
    expect(table).to_contain_text("default")
    shots.take(page, "20-policy-keypair")

    page.get_by_role("button", name="Create").click()
    dialog = shell.dialog()
    dialog.locator("#pol-name").fill("e2e-gold")
    dialog.locator("[data-wb-unlimited=pol-slot_cpu]").uncheck()
    dialog.locator("#pol-slot_cpu").fill("4")
    dialog.locator("[data-wb-unlimited=pol-slot_mem]").uncheck()
    dialog.locator("#pol-slot_mem").fill("8")
    dialog.locator("[data-wb-unlimited=pol-idle_timeout]").uncheck()
    dialog.locator("#pol-idle_timeout").fill("-5")
    dialog.locator("#pol-allowed_vfolder_hosts").fill("local:volume1")
    shots.take(page, "21-policy-create-dialog")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator("#pol-idle_timeout-error")).to_be_visible()  # checked before the API
    dialog.locator("#pol-idle_timeout").fill("600")
    dialog.get_by_role("button", name="Create").click()
    shell.toast("Resource policy e2e-gold was created.")
    row = table.locator("tr[data-policy=e2e-gold]")
    expect(row).to_contain_text("4 Core")
    expect(row).to_contain_text("8 GiB")
    expect(row).to_contain_text("00:10:00")
    expect(row).to_contain_text("local:volume1")

    row.get_by_role("button", name="Edit e2e-gold").click()
    dialog = shell.dialog()
    expect(dialog.locator("#pol-name")).to_have_attribute("readonly", "")
    expect(dialog.locator("#pol-slot_cpu")).to_have_value("4")
    dialog.locator("#pol-max_concurrent_sessions").fill("7")
    shots.take(page, "22-policy-edit-dialog")
    dialog.get_by_role("button", name="Save").click()
    shell.toast("Resource policy e2e-gold was updated.")
    expect(row.locator("[data-col=max_concurrent_sessions]")).to_have_text("7")

    name, text = _download(page, "Export as JSON")
    assert name == "keypair-resource-policies.json"
    exported = {p["name"]: p for p in json.loads(text)}
    assert exported["e2e-gold"]["max_concurrent_sessions"] == 7
    assert exported["e2e-gold"]["total_resource_slots"] == {"cpu": "4", "mem": str(8 * 2**30)}
    name, text = _download(page, "Export as CSV")
    assert name == "keypair-resource-policies.csv"
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["e2e-gold"]["idle_timeout"] == "600"

    # a policy in use cannot be deleted: the API's message is shown in the dialog
    user = workbay.admin.new_user("dora")
    key = workbay.admin.call("GET", "/admin/keypairs", user_email=user)["items"][0]["access_key"]
    workbay.admin.call("PATCH", f"/admin/keypairs/{key}", {"resource_policy": "e2e-gold"})
    row.get_by_role("button", name="Delete e2e-gold").click()
    dialog = shell.dialog()
    delete = dialog.get_by_role("button", name="Delete")
    expect(delete).to_be_disabled()
    dialog.locator("#confirm-input").fill("e2e-gold")
    delete.click()
    expect(dialog.get_by_role("alert")).to_contain_text("cannot be deleted")
    shots.take(page, "23-policy-delete-refused")
    workbay.admin.call("PATCH", f"/admin/keypairs/{key}", {"resource_policy": "default"})
    dialog.locator("#confirm-input").fill("e2e-gold")
    dialog.get_by_role("button", name="Delete").click()
    shell.toast("Resource policy e2e-gold was deleted.")
    expect(row).to_have_count(0)

    for kind in ("user", "project"):
        page.get_by_role("link", name=kind.title(), exact=True).click()
        expect(page.locator(f"#policy-{kind}-table")).to_contain_text("default")
        shots.take(page, f"24-policy-{kind}")
    page.get_by_role("button", name="Create").click()
    dialog = shell.dialog()
    dialog.locator("#pol-name").fill("e2e-project")
    dialog.locator("#pol-max_network_count").fill("5")
    dialog.get_by_role("button", name="Create").click()
    shell.toast("Resource policy e2e-project was created.")
    expect(page.locator("tr[data-policy=e2e-project] [data-col=max_network_count]")).to_have_text("5")


def test_admin_adds_a_keypair_with_explicit_keys(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    owner = workbay.admin.new_user("erin")
    page.get_by_role("link", name="Credentials").click()
    expect(page.locator("#credentials-table")).to_contain_text(owner)
    shots.take(page, "30-credentials")

    access_key, secret_key = "AKIAE2EEXPLICIT00001", "e2e-secret-" + "x" * 29
    page.get_by_role("button", name="Add credential").click()
    dialog = shell.dialog()
    dialog.locator("#kp-user_email").fill(owner)
    dialog.locator("#kp-rate_limit").fill("500")
    dialog.get_by_text("Advanced").click()
    dialog.locator("#kp-access_key").fill(access_key)
    dialog.locator("#kp-secret_key").fill(secret_key)
    shots.take(page, "31-add-credential")
    dialog.get_by_role("button", name="Add").click()
    shell.toast(f"Keypair {access_key} was added.")
    row = page.locator("#credentials-table tr", has_text=access_key)
    expect(row).to_contain_text("500 requests / 15 min")

    row.get_by_role("button", name=f"Details {access_key}").click()
    expect(shell.dialog()).to_contain_text(secret_key)
    shots.take(page, "32-keypair-detail")
    shell.dialog().get_by_role("button", name="Close", exact=True).last.click()
    shell.dialog_closed()

    row.get_by_role("button", name=f"Edit {access_key}").click()
    dialog = shell.dialog()
    dialog.locator("#kp-rate_limit").fill("0")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#kp-rate_limit-error")).to_be_visible()
    dialog.locator("#kp-rate_limit").fill("900")
    dialog.get_by_role("button", name="Save").click()
    shell.toast(f"Keypair {access_key} was updated.")
    expect(row).to_contain_text("900 requests / 15 min")

    # requests signed with the new keys work
    from tests.e2e.support import AdminAPI
    assert AdminAPI(workbay.manager_url, access_key, secret_key).call("GET", "/user/me")["email"] == owner

    row.get_by_role("button", name=f"Deactivate {access_key}").click()
    shell.dialog().get_by_role("button", name="Deactivate").click()
    shell.toast(f"Keypair {access_key} was deactivated.")
    page.get_by_role("link", name="Inactive").click()
    row = page.locator("#credentials-table tr", has_text=access_key)
    expect(row).to_be_visible()
    row.get_by_role("button", name=f"Delete {access_key}").click()
    dialog = shell.dialog()
    dialog.locator("#confirm-input").fill(access_key)
    shots.take(page, "33-delete-credential")
    dialog.get_by_role("button", name="Delete").click()
    shell.toast(f"Keypair {access_key} was deleted.")
    expect(page.locator("#credentials-list")).not_to_contain_text(access_key)


def test_column_chooser_and_filters_keep_their_state(admin: Page, workbay, shots):
    page = admin
    for n in range(3):
        workbay.admin.new_user(f"filter{n}")
    page.locator("input[name=q]").fill("filter1")
    expect(page.locator("#users-table tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=filter1"))
    page.locator(".wb-column-chooser button").click()
    page.locator("[data-column-toggle=users-table][value=description]").uncheck()
    expect(page.locator("#users-table th[data-col=description]")).to_be_hidden()
    page.reload()
    expect(page.locator("input[name=q]")).to_have_value("filter1")
    expect(page.locator("#users-table th[data-col=description]")).to_be_hidden()
    expect(page.locator("#users-table th[data-col=email]")).to_be_visible()


def test_project_selector_and_notification_bell(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    project = workbay.admin.call("GET", "/admin/projects", q="model-store")["items"][0]
    workbay.admin.call("POST", f"/admin/projects/{project['id']}/members", {"emails": [ADMIN]})
    with page.expect_response("**/func/events/notifications") as stream:
        page.reload()
    assert stream.value.status == 200  # the bell listens to the manager's SSE through /func
    page.locator("#wb-bell").click()
    expect(page.locator("#wb-bell-list")).to_contain_text("No notifications yet.")
    shots.take(page, "46-notifications")
    page.keyboard.press("Escape")
    page.select_option("#wb-project-select", label="model-store")
    shell.toast("The current project was changed.")
    page.reload()
    expect(page.locator("#wb-project-select")).to_have_value(project["id"])
    assert workbay.admin.call("GET", "/user/preferences")["project"] == project["id"]


def test_user_menu_screens_and_settings(admin: Page, workbay, shots):
    page, shell = admin, Shell(admin)
    shell.user_menu("About")
    expect(shell.dialog()).to_contain_text("v7.20230615")
    shots.take(page, "40-about")
    page.keyboard.press("Escape")
    shell.dialog_closed()

    shell.user_menu("Preferences")
    page.wait_for_url("**/settings")
    page.get_by_role("button", name="Show").click()
    expect(shell.dialog().locator("#my-access_key")).to_have_value(re.compile(r"^[A-Z0-9]{20}$"))
    shots.take(page, "41-my-keypair")
    page.keyboard.press("Escape")
    shell.dialog_closed()

    page.get_by_role("button", name="Manage").click()
    dialog = shell.dialog()
    page.once("dialog", lambda d: d.accept())
    dialog.get_by_role("button", name="Generate").click()
    expect(dialog.locator("#ssh-private")).to_contain_text("PRIVATE KEY")
    shots.take(page, "42-ssh-keypair")
    page.keyboard.press("Escape")
    shell.dialog_closed()

    page.locator("#settings-search").fill("sidebar")
    expect(page.locator("[data-wb-setting]:visible")).to_have_count(1)
    page.locator("#settings-search").fill("")
    page.locator("#settings-search").blur()  # "[" types into a text field; elsewhere it toggles
    page.keyboard.press("[")
    expect(page.locator("#wb-shell")).to_have_class(re.compile("wb-compact"))
    shots.take(page, "43-sidebar-compact")
    page.keyboard.press("[")

    shell.user_menu("Logs / errors")
    page.wait_for_url("**/settings?tab=logs")
    expect(page.locator("#logs-body tr").first).to_be_visible()  # the dialogs above were logged
    shots.take(page, "44-settings-logs")
    page.locator("#logs-errors-only").check()
    page.locator("#logs-clear").click()
    expect(page.locator("#logs-empty")).to_be_visible()


def test_sign_up_dialog(page: Page, workbay, shots):
    login = LoginPage(page).open()
    page.get_by_role("button", name="Sign up").click()
    dialog = Shell(page).dialog()
    dialog.locator("#su-email").fill("signup@example.com")
    dialog.locator("#su-password").fill(USER_PASSWORD)
    dialog.locator("#su-password2").fill(USER_PASSWORD + "x")
    dialog.get_by_role("button", name="Sign up").click()
    expect(dialog.locator("#su-password2-error")).to_contain_text("do not match")
    expect(dialog.locator("#su-agree")).to_have_class(re.compile("is-invalid"))
    shots.take(page, "45-sign-up")
    assert login
