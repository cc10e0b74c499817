"""User journeys of identity and access: an admin creates a user; the user changes the password
and turns on 2FA; the lockout; theme and language that persist."""

from __future__ import annotations

import re

import pyotp
from playwright.async_api import Page, expect

from tests.e2e.support import ADMIN, ADMIN_PASSWORD, USER_PASSWORD, LoginPage, Shell


async def test_admin_logs_in_and_creates_a_user(page: Page, workbay, shots):
    login = await LoginPage(page).open()
    await shots.take(page, "01-login")
    await login.log_in(ADMIN, ADMIN_PASSWORD, "/users")
    shell = Shell(page)
    await expect(page.locator("#users-table")).to_contain_text(ADMIN)
    await shots.take(page, "02-users")

    await page.get_by_role("button", name="Create user").click()
    dialog = shell.dialog()
    email = "new.person@example.com"
    await dialog.locator("#user-email").fill(email)
    await dialog.locator("#user-username").fill("newperson")
    await dialog.get_by_label("Full name").fill("New Person")
    await dialog.locator("#user-password").fill("short")
    await dialog.locator("#user-password2").fill("short")
    await dialog.get_by_label("Description").fill("Created by the end-to-end test")
    await shots.take(page, "03-create-user-dialog")
    await dialog.get_by_role("button", name="Create").click()
    # the manager's password rules come back next to the field
    await expect(dialog.locator("#user-password-error")).to_contain_text("at least one digit")
    await shots.take(page, "04-create-user-error")
    await dialog.locator("#user-password").fill(USER_PASSWORD)
    await dialog.locator("#user-password2").fill(USER_PASSWORD)
    await dialog.get_by_role("button", name="Create").click()
    await shell.toast(f"User {email} was created.")
    await shell.dialog_closed()
    await expect(page.locator("#users-table")).to_contain_text(email)

    # duplicate e-mail is refused with the API's message (ID-12)
    await page.get_by_role("button", name="Create user").click()
    dialog = shell.dialog()
    await dialog.locator("#user-email").fill(email)
    await dialog.locator("#user-username").fill("someoneelse")
    await dialog.locator("#user-password").fill(USER_PASSWORD)
    await dialog.locator("#user-password2").fill(USER_PASSWORD)
    await dialog.get_by_role("button", name="Create").click()
    await expect(dialog.locator("#user-email-error")).to_contain_text("already exists")
    await dialog.get_by_role("button", name="Cancel").click()
    await shell.dialog_closed()

    row = page.locator("#users-table tr", has_text=email)
    await row.get_by_role("button", name=f"Details {email}").click()
    await expect(shell.dialog()).to_contain_text("default")  # domain and project
    await shots.take(page, "05-user-detail")
    await shell.dialog().get_by_role("button", name="Close", exact=True).last.click()
    await shell.dialog_closed()

    await row.get_by_role("button", name=f"Edit {email}").click()
    dialog = shell.dialog()
    await expect(dialog.locator("#user-email")).to_have_attribute("readonly", "")
    await dialog.get_by_label("Full name").fill("New Person Renamed")
    await dialog.get_by_role("button", name="Save").click()
    await shell.toast(f"User {email} was updated.")
    await expect(row).to_contain_text("New Person Renamed")

    await row.get_by_role("button", name=f"Deactivate {email}").click()
    await expect(shell.dialog()).to_contain_text("New Person Renamed")  # the confirmation names the user
    await shots.take(page, "06-deactivate-user")
    await shell.dialog().get_by_role("button", name="Deactivate").click()
    await shell.toast(f"User {email} was deactivated.")
    await expect(page.locator("#users-table")).not_to_contain_text(email)
    await page.get_by_role("link", name="Inactive").click()
    inactive_row = page.locator("#users-table tr", has_text=email)
    await expect(inactive_row).to_be_visible()
    await shots.take(page, "07-users-inactive")
    await inactive_row.get_by_role("button", name=f"Reactivate {email}").click()
    await shell.dialog().get_by_role("button", name="Reactivate").click()
    await shell.toast(f"User {email} was reactivated.")
    await expect(page.locator("#users-list")).to_contain_text("No inactive users.")


async def test_user_changes_password_and_turns_on_two_factor_login(page: Page, workbay, shots):
    email = workbay.admin.new_user("alice")
    login = LoginPage(page)
    await login.log_in(email, USER_PASSWORD, "/summary")  # users land on the Summary page
    await page.goto("/settings")
    shell = Shell(page)
    await expect(page.locator("#wb-sidebar")).not_to_contain_text("Users")  # users see no admin pages
    await shots.take(page, "10-settings-general")

    await shell.user_menu("My account")
    dialog = shell.dialog()
    await shots.take(page, "11-my-account")
    new_password = "N3w!e2e-password"
    await dialog.locator("#acc-old_password").fill(USER_PASSWORD)
    await dialog.locator("#acc-new_password").fill("password")
    await dialog.locator("#acc-new_password2").fill("password")
    await dialog.get_by_role("button", name="Change password").click()
    await expect(dialog.locator("#acc-new_password-error")).to_contain_text("at least one digit")
    await shots.take(page, "12-password-rule-error")
    await dialog.locator("#acc-old_password").fill(USER_PASSWORD)
    await dialog.locator("#acc-new_password").fill(new_password)
    await dialog.locator("#acc-new_password2").fill(new_password)
    await dialog.get_by_role("button", name="Change password").click()
    await shell.toast("Your password was changed.")

    await dialog.get_by_label("2FA enabled").check()
    secret = await dialog.get_by_test_id("totp-secret").input_value()
    await expect(dialog.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    await shots.take(page, "13-totp-setup")
    await dialog.get_by_label("Verification code").fill("000000")
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog.locator("#totp-otp-error")).to_be_visible()
    await dialog.get_by_label("Verification code").fill(pyotp.TOTP(secret).now())
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog.get_by_test_id("totp-state")).to_have_text("On")
    await shell.toast("Two-factor authentication is on.")
    await dialog.get_by_role("button", name="Close", exact=True).last.click()
    await shell.log_out()

    await login.submit(email, new_password)
    await expect(page.locator("#login-otp")).to_be_visible()
    await expect(login.message).to_contain_text("6-digit")
    await shots.take(page, "14-login-otp")
    await page.fill("#login-otp", pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/summary")
    await expect(page.locator("#wb-user-menu")).to_contain_text("Alice")


async def test_ten_bad_passwords_lock_the_account(page: Page, workbay, shots):
    email = workbay.admin.new_user("mallory")
    login = await LoginPage(page).open()
    for attempt in range(10):
        await login.submit(email, f"wrong-password-{attempt}")
        await expect(login.message).to_contain_text("Incorrect email or password.")
    await login.submit(email, USER_PASSWORD)
    await expect(login.message).to_contain_text("Too many failed login attempts")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await shots.take(page, "15-login-locked")
    # an unrelated account still logs in
    other = workbay.admin.new_user("bob")
    await login.submit(other, USER_PASSWORD)
    await page.wait_for_url("**/summary")


async def test_theme_and_language_persist_across_reloads_and_logins(browser, workbay, page: Page, shots):
    email = workbay.admin.new_user("carol")
    await LoginPage(page).log_in(email, USER_PASSWORD, "/summary")
    await page.goto("/settings")
    html = page.locator("html")
    await expect(html).to_have_attribute("data-bs-theme", "light")
    async with page.expect_response("**/preferences"):
        await page.locator("#wb-theme-toggle").click()
    await expect(html).to_have_attribute("data-bs-theme", "dark")
    await page.reload()
    await expect(html).to_have_attribute("data-bs-theme", "dark")  # rendered by the server: no flash

    async with page.expect_navigation():
        await page.select_option("#pref-language", "ko")
    await expect(html).to_have_attribute("lang", "ko")
    await expect(page.locator("#wb-sidebar")).to_contain_text("사용자 설정")
    await page.reload()
    await expect(page.locator("h1.wb-page-title")).to_have_text("사용자 설정")
    await shots.take(page, "16-settings-korean")

    fresh = await browser.new_context(base_url=workbay.url, viewport={"width": 1360, "height": 860})
    try:
        other = await fresh.new_page()
        await other.goto("/login")
        await other.fill("#login-username", email)
        await other.fill("#login-password", USER_PASSWORD)
        await other.get_by_role("button", name="Log in").click()
        await other.wait_for_url("**/summary")
        await expect(other.locator("html")).to_have_attribute("data-bs-theme", "dark")
        await expect(other.locator("html")).to_have_attribute("lang", "ko")
    finally:
        await fresh.close()

