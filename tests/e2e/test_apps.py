"""Apps in sessions through the WebUI with real containers and the real app-proxy (AP-1, AP-2,
AP-3, AP-5…AP-7): the app launcher opens by itself when a session launched here runs and from the
session list; the Terminal opens in a new window where a typed command runs in tmux; Jupyter
Notebook opens in a new window and runs a cell; SSH / SFTP shows the connection dialog with the
preferred SSH port from the settings and the id_container download, and plain ssh works with it;
a folder's "Run SFTP server" shows the dialog (scp puts a file into the folder) and "Execute File
Browser" opens a page listing the folder; both system sessions are listed under Upload sessions
and terminated from there."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.support import LoginPage, Shell, Workbay, container_system, workbay_of
from tests.support.sessions import DEMO_PASSWORD, IMAGE, System
from workbay.client.sdk import Client

pytestmark = pytest.mark.timeout(420)
USER = "user@workbay.local"
APP_WAIT = 90_000  # ms: an app starting in a container on a busy machine
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


@pytest.fixture(scope="module")
async def system(tmp_path_factory) -> AsyncIterator[System]:
    async with container_system(tmp_path_factory.mktemp("e2e-apps"), "app journeys", cpu="3", appproxy=True) as sysm:
        yield sysm


@pytest.fixture(scope="module")
def workbay(system: System) -> Workbay:
    return workbay_of(system)


@pytest.fixture(scope="module")
async def user_api(system: System) -> Client:
    return await system.login(USER, DEMO_PASSWORD)


@pytest.fixture(scope="module")
async def session(user_api: Client) -> dict:
    name = f"e2e-apps-{uuid.uuid4().hex[:5]}"
    created = await user_api.post("/session", json={"image": IMAGE, "name": name,
                                                    "config": {"resources": {"cpu": 1, "mem": "768m"}}})
    assert created["status"] == "RUNNING", created
    return {"id": created["sessionId"], "name": name}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


async def open_launcher(page: Page, name: str):
    await page.goto("/sessions")
    await page.locator(f'#session-table tr[data-session-name="{name}"]').get_by_role(
        "button", name=f"Apps of {name}").click()
    dialog = Shell(page).dialog()
    await expect(dialog.locator("#app-launcher")).to_be_visible()
    return dialog


async def test_launcher_terminal_and_jupyter(page: Page, session: dict, shots):
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")
    shell = Shell(page)

    # a session the user just launched: the launcher opens by itself once it runs (here: already)
    await page.goto("/sessions")
    await page.evaluate("([id]) => sessionStorage.setItem('workbay:open-apps', JSON.stringify([{id, at: Date.now()}]))",
                        [session["id"]])
    await page.reload()
    dialog = shell.dialog()
    await expect(dialog.locator("#app-launcher")).to_be_visible()
    await expect(dialog).to_contain_text(f"Apps of {session['name']}")
    await expect(dialog.get_by_test_id("app-ttyd")).to_be_focused()
    assert await page.evaluate("sessionStorage.getItem('workbay:open-apps')") is None
    for label in ("Terminal", "SSH / SFTP", "File Browser", "Jupyter Notebook", "JupyterLab"):
        await expect(dialog.locator(".wb-app-tile").filter(has_text=label)).to_have_count(1)
    await expect(dialog.get_by_role("checkbox", name="Open app to public")).not_to_be_checked()
    port_input = dialog.get_by_role("spinbutton", name="Preferred port")
    await expect(port_input).to_be_disabled()
    await dialog.get_by_role("checkbox", name="Try preferred port").check()
    await expect(port_input).to_be_enabled()
    await expect(port_input).to_be_focused()
    await port_input.fill("80")  # below 1024: refused in place, nothing opens
    await dialog.get_by_test_id("app-jupyter").click()
    await expect(port_input).to_have_class(re.compile("is-invalid"))
    await expect(dialog.locator("#app-port-error")).to_have_text("Enter a port from 1024 to 65535.")
    assert len(page.context.pages) == 1
    await dialog.get_by_role("checkbox", name="Try preferred port").uncheck()
    await expect(dialog.locator("#app-port-error")).to_be_hidden()
    await shots.take(page, "apps-01-launcher")
    await dialog.locator(".modal-footer").get_by_role("button", name="Close").click()
    await shell.dialog_closed()

    # the Terminal, opened from the session list's Apps button, in a new window; keyboard only
    dialog = await open_launcher(page, session["name"])
    await dialog.get_by_test_id("app-ttyd").focus()
    async with page.expect_popup() as opened:
        await page.keyboard.press("Enter")
    term = await opened.value
    await expect(dialog.locator("#app-status")).to_contain_text("Terminal opened in a new window.", timeout=APP_WAIT)
    rows = term.locator(".xterm-rows")
    await expect(rows).to_be_visible(timeout=APP_WAIT)
    await expect(rows).to_contain_text("$", timeout=APP_WAIT)  # the shell's prompt in tmux
    await term.locator(".xterm").click()
    await term.keyboard.type("echo $((6*7))")
    await term.keyboard.press("Enter")
    await expect(rows.locator("> div").filter(has_text=re.compile(r"^\s*42\s*$"))).to_have_count(1, timeout=30_000)
    await shots.take(term, "apps-02-terminal")
    await term.close()

    # Jupyter Notebook: a notebook made through its REST API (with the circuit's cookie), one cell run
    async with page.expect_popup() as opened:
        await dialog.get_by_test_id("app-jupyter").click()
    jupyter = await opened.value
    await jupyter.wait_for_url(re.compile(r"/tree"), timeout=APP_WAIT)
    await expect(dialog.locator("#app-status")).to_contain_text("Jupyter Notebook opened in a new window.")
    base = re.match(r"https?://[^/]+", jupyter.url).group(0)
    cookies = {c["name"]: c["value"] for c in await jupyter.context.cookies(base)}
    headers = {"X-XSRFToken": cookies["_xsrf"]} if "_xsrf" in cookies else {}
    notebook = {"type": "notebook", "format": "json", "content": {
        "nbformat": 4, "nbformat_minor": 5, "cells": [
            {"cell_type": "code", "id": "c1", "source": "", "metadata": {}, "outputs": [], "execution_count": None}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}}
    made = await jupyter.context.request.put(f"{base}/api/contents/e2e.ipynb", data=json.dumps(notebook),
                                             headers={**headers, "Content-Type": "application/json"})
    assert made.status in (200, 201), await made.text()
    await jupyter.goto(f"{base}/notebooks/e2e.ipynb")
    editor = jupyter.locator(".jp-Notebook .jp-Cell .cm-content").first
    await expect(editor).to_be_visible(timeout=APP_WAIT)
    await expect(jupyter.locator(".jp-Notebook-ExecutionIndicator, #jp-main-statusbar").first).to_be_visible(timeout=APP_WAIT)
    await editor.click()
    await jupyter.keyboard.type("print(6*7)")
    output = jupyter.locator(".jp-OutputArea-output").first
    # a cell run before the new kernel is connected is dropped: run it again until it answers
    for _ in range(8):
        await editor.click()
        await jupyter.keyboard.press("Shift+Enter")
        try:
            await expect(output).to_contain_text("42", timeout=12_000)
            break
        except AssertionError:
            continue
    await expect(output).to_contain_text("42")
    await shots.take(jupyter, "apps-03-jupyter")
    await jupyter.close()


async def test_ssh_dialog_with_the_preferred_port_and_key(page: Page, session: dict, tmp_path: Path, shots):
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")
    shell = Shell(page)
    port = free_port()
    await page.goto("/settings")
    field = page.get_by_label("Preferred SSH port")
    await field.fill(str(port))
    await field.press("Enter")
    await shell.toast("Saved.")
    await page.reload()
    await expect(page.get_by_label("Preferred SSH port")).to_have_value(str(port))

    dialog = await open_launcher(page, session["name"])
    await expect(dialog.get_by_test_id("ssh-port-note")).to_contain_text(str(port))
    await dialog.get_by_test_id("app-sshd").click()
    ssh = shell.dialog().get_by_test_id("ssh-dialog")
    await expect(ssh).to_be_visible(timeout=APP_WAIT)
    await expect(ssh.get_by_test_id("ssh-user")).to_have_text("work")
    await expect(ssh.get_by_test_id("ssh-host")).to_have_text("127.0.0.1")
    await expect(ssh.get_by_test_id("ssh-port")).to_have_text(str(port))
    await expect(ssh.get_by_test_id("ssh-cmd-ssh")).to_have_value(f"ssh -i ./id_container -p {port} work@127.0.0.1")
    await expect(ssh.get_by_test_id("ssh-cmd-sftp")).to_have_value(f"sftp -i ./id_container -P {port} work@127.0.0.1")
    await shots.take(page, "apps-04-ssh")
    async with page.expect_download() as got:
        await ssh.get_by_role("link", name="Download SSH key").click()
    download = await got.value
    assert download.suggested_filename == "id_container"
    key = tmp_path / "id_container"
    await download.save_as(key)
    key.chmod(0o600)
    assert "PRIVATE KEY" in key.read_text()
    out = await asyncio.to_thread(subprocess.run, ["ssh", *SSH_OPTS, "-i", str(key), "-p", str(port),
                                                   "work@127.0.0.1", "echo $((6*7))"],
                                  capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr
    await page.goto("/settings")
    await page.get_by_label("Preferred SSH port").fill("")
    await page.get_by_label("Preferred SSH port").press("Enter")
    await shell.toast("Saved.")


async def test_folder_sftp_server_and_file_browser(page: Page, user_api: Client, tmp_path: Path, shots):
    folder = f"e2e-apps-{uuid.uuid4().hex[:5]}"
    await user_api.post("/folders", json={"name": folder})
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")
    shell = Shell(page)
    await page.goto("/data")
    await page.locator(f'#folder-table tr[data-folder="{folder}"]').get_by_role(
        "button", name=f"Open {folder}", exact=True).first.click()
    explorer = shell.dialog()
    await expect(explorer.locator("#explorer-files")).to_be_visible()
    await shots.take(page, "apps-07-explorer")

    # Run SFTP server: the connection dialog; scp a file into the folder with the key
    await explorer.get_by_role("button", name="Run SFTP server").click()
    await expect(explorer.locator("[data-wb-folder-app-status]")).to_contain_text("Starting an SFTP server")
    ssh = page.locator("#modal-host .modal.show").get_by_test_id("ssh-dialog")
    await expect(ssh).to_be_visible(timeout=APP_WAIT)
    await expect(ssh).to_contain_text(f"SFTP server for the folder {folder}")
    port = (await ssh.get_by_test_id("ssh-port").text_content()).strip()
    await expect(ssh.get_by_test_id("ssh-cmd-scp")).to_have_value(
        f"scp -i ./id_container -P {port} FILE work@127.0.0.1:~/{folder}/")
    await shots.take(page, "apps-05-sftp")
    async with page.expect_download() as got:
        await ssh.get_by_role("link", name="Download SSH key").click()
    key = tmp_path / "id_container"
    await (await got.value).save_as(key)
    key.chmod(0o600)
    hello = tmp_path / "hello-from-sftp.txt"
    hello.write_text("hello\n")
    out = await asyncio.to_thread(subprocess.run, ["scp", *SSH_OPTS, "-i", str(key), "-P", port, str(hello),
                                                   f"work@127.0.0.1:~/{folder}/"],
                                  capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    await page.locator("#modal-host .modal.show .modal-footer").get_by_role("button", name="Close").click()
    await shell.dialog_closed()

    # Execute File Browser: a new window listing the folder (with the file sent over SFTP)
    await page.locator(f'#folder-table tr[data-folder="{folder}"]').get_by_role(
        "button", name=f"Open {folder}", exact=True).first.click()
    explorer = shell.dialog()
    await expect(explorer.locator("#explorer-files")).to_contain_text("hello-from-sftp.txt")
    async with page.expect_popup() as opened:
        await explorer.get_by_role("button", name="Execute File Browser").click()
    browser = await opened.value
    await expect(explorer.locator("[data-wb-folder-app-status]")).to_contain_text(
        "The File Browser opened in a new window.", timeout=APP_WAIT)
    await expect(browser.get_by_text("hello-from-sftp.txt")).to_be_visible(timeout=APP_WAIT)
    await shots.take(browser, "apps-06-filebrowser")
    await browser.close()

    # both are system sessions: listed under Upload sessions, terminated from there
    await page.goto("/sessions?tab=upload")
    rows = page.locator("#session-table tr[data-session-name]")
    await expect(rows).to_have_count(2)
    for _ in range(2):
        name = await rows.first.get_attribute("data-session-name")
        assert name.startswith(("fb-", "sftp-")), name
        await rows.first.get_by_role("button", name=f"Terminate {name}").click()
        await shell.dialog().get_by_role("button", name="Terminate").click()
        await shell.toast(f"Session {name} is terminating.")
        await expect(page.locator(f'#session-table tr[data-session-name="{name}"]')).to_have_count(0, timeout=APP_WAIT)
