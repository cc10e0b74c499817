"""User journeys of identity and access: an admin creates a user; the user changes the password
and turns on 2FA; the lockout; theme and language that persist."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from tests.e2e.support import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, LoginPage, Shell


def test_admin_logs_in_and_creates_a_user(page: Page, workbay, shots):
    login = LoginPage(page).open()
    shots.take(page, "01-login")
    login.log_in(ADMIN, ADMIN_PASSWORD, "/users")
    shell = Shell(page)
    expect(page.locator("#users-table")).to_contain_text(ADMIN)
    shots.take(page, "02-users")

    page.get_by_role("button", name="Create user").click()
    dialog = shell.dialog()
    email = "new.person@example.com"
    dialog.locator("#user-email").fill(email)
    dialog.locator("#user-username").fill("newperson")
    dialog.get_by_label("Full name").fill("New Person")
    dialog.locator("#user-password").fill("short")
    dialog.locator("#user-password2").fill("short")
    dialog.get_by_label("Description").fill("Created by the end-to-end test")
    shots.take(page, "03-create-user-dialog")
    dialog.get_by_role("button", name="Create").click()
    # the manager's password rules come back next to the field
    expect(dialog.locator("#user-password-error")).to_contain_text("at least one digit")
    shots.take(page, "04-create-user-error")
    dialog.locator("#user-password").fill(USER_PASSWORD)
    dialog.locator("#user-password2").fill(USER_PASSWORD)
    dialog.get_by_role("button", name="Create").click()
    shell.toast(f"User {email} was created.")
    shell.dialog_closed()
    expect(page.locator("#users-table")).to_contain_text(email)

    # duplicate e-mail is refused with the API's message (ID-12)
    page.get_by_role("button", name="Create user").click()
    dialog = shell.dialog()
    dialog.locator("#user-email").fill(email)
    dialog.locator("#user-username").fill("someoneelse")
    dialog.locator("#user-password").fill(USER_PASSWORD)
    dialog.locator("#user-password2").fill(USER_PASSWORD)
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator("#user-email-error")).to_contain_text("already exists")
    dialog.get_by_role("button", name="Cancel").click()
    shell.dialog_closed()

    row = page.locator("#users-table tr", has_text=email)
    row.get_by_role("button", name=f"Details {email}").click()
    expect(shell.dialog()).to_contain_text("default")  # domain and project
    shots.take(page, "05-user-detail")
    shell.dialog().get_by_role("button", name="Close", exact=True).last.click()
    shell.dialog_closed()

    row.get_by_role("button", name=f"Edit {email}").click()
    dialog = shell.dialog()
    expect(dialog.locator("#user-email")).to_have_attribute("readonly", "")
    dialog.get_by_label("Full name").fill("New Person Renamed")
    dialog.get_by_role("button", name="Save").click()
    shell.toast(f"User {email} was updated.")
    expect(row).to_contain_text("New Person Renamed")

    row.get_by_role("button", name=f"Deactivate {email}").click()
    expect(shell.dialog()).to_contain_text("New Person Renamed")  # the confirmation names the user
    shots.take(page, "06-deactivate-user")
    shell.dialog().get_by_role("button", name="Deactivate").click()
    shell.toast(f"User {email} was deactivated.")
    expect(page.locator("#users-table")).not_to_contain_text(email)
    page.get_by_role("link", name="Inactive").click()
    inactive_row = page.locator("#users-table tr", has_text=email)
    expect(inactive_row).to_be_visible()
    shots.take(page, "07-users-inactive")
    inactive_row.get_by_role("button", name=f"Reactivate {email}").click()
    shell.dialog().get_by_role("button", name="Reactivate").click()
    shell.toast(f"User {email} was reactivated.")
    expect(page.locator("#users-list")).to_contain_text("No inactive users.")


def test_user_changes_password_and_turns_on_two_factor_login(page: Page, workbay, shots):
    email = workbay.admin.new_user("alice")
    login = LoginPage(page)
    login.log_in(email, USER_PASSWORD, "/settings")
    shell = Shell(page)
    expect(page.locator("#wb-sidebar")).not_to_contain_text("Users")  # users see no admin pages
    shots.take(page, "10-settings-general")

    shell.user_menu("My account")
    dialog = shell.dialog()
    shots.take(page, "11-my-account")
    new_password = "N3w!e2e-password"
    dialog.locator("#acc-old_password").fill(USER_PASSWORD)
    dialog.locator("#acc-new_password").fill("password")
    dialog.locator("#acc-new_password2").fill("password")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.locator("#acc-new_password-error")).to_contain_text("at least one digit")
    shots.take(page, "12-password-rule-error")
    dialog.locator("#acc-old_password").fill(USER_PASSWORD)
    dialog.locator("#acc-new_password").fill(new_password)
    dialog.locator("#acc-new_password2").fill(new_password)
    dialog.get_by_role("button", name="Change password").click()
    shell.toast("Your password was changed.")

    dialog.get_by_label("2FA enabled").check()
    secret = dialog.get_by_test_id("totp-secret").input_value()
    expect(dialog.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    shots.take(page, "13-totp-setup")
    dialog.get_by_label("Verification code").fill("000000")
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog.locator("#totp-otp-error")).to_be_visible()
    dialog.get_by_label("Verification code").fill(pyotp.TOTP(secret).now())
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog.get_by_test_id("totp-state")).to_have_text("On")
    shell.toast("Two-factor authentication is on.")
    dialog.get_by_role("button", name="Close", exact=True).last.click()
    shell.log_out()

    login.submit(email, new_password)
    expect(page.locator("#login-otp")).to_be_visible()
    expect(login.message).to_contain_text("6-digit")
    shots.take(page, "14-login-otp")
    page.fill("#login-otp", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/settings")
    expect(page.locator("#wb-user-menu")).to_contain_text("Alice")


def test_ten_bad_passwords_lock_the_account(page: Page, workbay, shots):
    email = workbay.admin.new_user("mallory")
    login = LoginPage(page).open()
    for attempt in range(10):
        login.submit(email, f"wrong-password-{attempt}")
        expect(login.message).to_contain_text("Incorrect email or password.")
    login.submit(email, USER_PASSWORD)
    expect(login.message).to_contain_text("Too many failed login attempts")
    expect(page).to_have_url(re.compile(r"/login$"))
    shots.take(page, "15-login-locked")
    # an unrelated account still logs in
    other = workbay.admin.new_user("bob")
    login.submit(other, USER_PASSWORD)
    page.wait_for_url("**/settings")


def test_theme_and_language_persist_across_reloads_and_logins(browser, workbay, page: Page, shots):
    email = workbay.admin.new_user("carol")
    LoginPage(page).log_in(email, USER_PASSWORD, "/settings")
    html = page.locator("html")
    expect(html).to_have_attribute("data-bs-theme", "light")
    with page.expect_response("**/preferences"):
        page.locator("#wb-theme-toggle").click()
    expect(html).to_have_attribute("data-bs-theme", "dark")
    page.reload()
    expect(html).to_have_attribute("data-bs-theme", "dark")  # rendered by the server: no flash

    with page.expect_navigation():
        page.select_option("#pref-language", "ko")
    expect(html).to_have_attribute("lang", "ko")
    expect(page.locator("#wb-sidebar")).to_contain_text("사용자 설정")
    page.reload()
    expect(page.locator("h1.wb-page-title")).to_have_text("사용자 설정")
    shots.take(page, "16-settings-korean")

    fresh = browser.new_context(base_url=workbay.url, viewport={"width": 1360, "height": 860})
    try:
        other = fresh.new_page()
        other.goto("/login")
        other.fill("#login-username", email)
        other.fill("#login-password", USER_PASSWORD)
        other.get_by_role("button", name="Log in").click()
        other.wait_for_url("**/settings")
        expect(other.locator("html")).to_have_attribute("data-bs-theme", "dark")
        expect(other.locator("html")).to_have_attribute("lang", "ko")
    finally:
        fresh.close()
